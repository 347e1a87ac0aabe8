//! Helpers shared by the integration tests: servers running in the background (in a lab
//! namespace or on the host's loopback) and test-only shaping with the `tc` binary.

#![allow(dead_code)] // each test file uses a subset

use std::future::Future;
use std::net::SocketAddr;
use std::process::Command;
use std::thread::JoinHandle;

use qoelab_lab::{Lab, NetNs};
use tokio::sync::oneshot;

/// A task running on its own thread and runtime; stopped and joined on drop.
pub struct Background {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// The address its listener is bound to.
    pub addr: SocketAddr,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `addr` (inside `ns` if given) and runs `serve(listener, stop)` in the background.
pub fn background<F, Fut>(ns: Option<&NetNs>, addr: &str, serve: F) -> Background
where
    F: FnOnce(tokio::net::TcpListener, oneshot::Receiver<()>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let bind = || {
        let listener = std::net::TcpListener::bind(addr).expect("bind the test listener");
        listener.set_nonblocking(true).unwrap();
        listener
    };
    let listener = match ns {
        Some(ns) => ns.run(bind).expect("enter the namespace"),
        None => bind(),
    };
    let bound = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            serve(listener, stop_rx).await;
        });
    });
    Background {
        stop: Some(stop_tx),
        thread: Some(thread),
        addr: bound,
    }
}

/// A loopback port that was free a moment ago (bound, read, closed).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Test setup only (the shaper crate does this in production): limits `iface` of the lab's
/// router to `rate_bps` with an HTB class over a byte fifo of about 100 ms (at least 15 kB).
pub fn shape(lab: &Lab, iface: &str, rate_bps: u64) {
    let limit_bytes = (rate_bps / 8 / 10).max(15_000);
    // Replaces whatever an earlier call set up (there is nothing else on a lab's interfaces).
    tc(lab, &format!("qdisc del dev {iface} root"));
    for args in [
        format!("qdisc add dev {iface} root handle 1: htb default 1"),
        format!("class add dev {iface} parent 1: classid 1:1 htb rate {rate_bps}bit"),
        format!("qdisc add dev {iface} parent 1:1 handle 10: bfifo limit {limit_bytes}"),
    ] {
        assert!(tc(lab, &args), "tc {args} failed");
    }
}

fn tc(lab: &Lab, args: &str) -> bool {
    lab.spawn("router", Command::new("tc").args(args.split_whitespace()))
        .expect("start tc in the router")
        .wait()
        .unwrap()
        .success()
}
