//! Traffic and inspection helpers for shaping tests in a lab.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use qoelab_lab::NetNs;

/// Starts a TCP sink on `addr` inside `ns`: accepts connections and discards what they send,
/// until `deadline`.
pub fn tcp_sink(
    ns: &NetNs,
    addr: SocketAddr,
    deadline: Instant,
) -> JoinHandle<std::io::Result<()>> {
    let listener = ns.run(|| TcpListener::bind(addr)).unwrap().unwrap();
    std::thread::spawn(move || {
        listener.set_nonblocking(true)?;
        let mut readers = Vec::new();
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => readers.push(std::thread::spawn(move || {
                    stream.set_nonblocking(false).ok();
                    stream
                        .set_read_timeout(Some(Duration::from_millis(200)))
                        .ok();
                    let mut buf = vec![0u8; 64 * 1024];
                    while Instant::now() < deadline {
                        if let Ok(0) = stream.read(&mut buf) {
                            break;
                        }
                    }
                })),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        for reader in readers {
            let _ = reader.join();
        }
        Ok(())
    })
}

/// Sends as fast as TCP allows from `ns` to `to` until `deadline`.
pub fn tcp_sender(
    ns: &NetNs,
    to: SocketAddr,
    deadline: Instant,
) -> JoinHandle<std::io::Result<u64>> {
    let stream = ns
        .run(|| TcpStream::connect_timeout(&to, Duration::from_secs(5)))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        let mut stream = stream;
        stream.set_write_timeout(Some(Duration::from_millis(200)))?;
        let block = vec![0x5au8; 16 * 1024];
        let mut sent = 0u64;
        while Instant::now() < deadline {
            match stream.write(&block) {
                Ok(n) => sent += n as u64,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                // The sink closes at the same deadline.
                Err(e)
                    if e.kind() == std::io::ErrorKind::BrokenPipe
                        || e.kind() == std::io::ErrorKind::ConnectionReset =>
                {
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    })
}

/// `tc qdisc/class/filter show dev DEV` inside namespace `ns`, without counters.
pub fn tc_show(ns: &str, dev: &str) -> String {
    let mut out = String::new();
    for what in ["qdisc", "class", "filter"] {
        let output = Command::new("ip")
            .args(["netns", "exec", ns, "tc", what, "show", "dev", dev])
            .output()
            .expect("run tc");
        out.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    if dev != "ingress" {
        let output = Command::new("ip")
            .args([
                "netns", "exec", ns, "tc", "filter", "show", "dev", dev, "ingress",
            ])
            .output()
            .expect("run tc");
        out.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    out
}

/// Runs `ip netns exec NS ARGS...` and panics on failure.
pub fn in_ns(ns: &str, args: &[&str]) -> String {
    let output = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A plan with one class per (name, rate, port) on `direction`, in a 100 Mbit/s link.
pub fn plan(direction: &str, classes: &[(&str, &str, u16)]) -> qoelab_shaper::InterfacePlan {
    let classes: Vec<String> = classes
        .iter()
        .map(|(name, rate, port)| {
            format!(r#"{{"name": "{name}", "rate_bps": "{rate}", "match": {{"protocol": "tcp", "dst_port": {port}}}}}"#)
        })
        .collect();
    serde_json::from_str(&format!(
        r#"{{"{direction}": {{"rate_bps": "100mbit", "default": {{"rate_bps": "1mbit", "ceil_bps": "50mbit"}},
            "classes": [{}]}}}}"#,
        classes.join(",")
    ))
    .unwrap()
}

/// Sends 1472-byte UDP datagrams from `ns` to `to` at `rate_bps` (paced every millisecond)
/// until `deadline`; a socket bound at `to` inside `sink_ns` receives and drops them.
pub fn udp_flow(
    ns: &NetNs,
    sink_ns: &NetNs,
    to: SocketAddr,
    rate_bps: u64,
    deadline: Instant,
) -> JoinHandle<std::io::Result<u64>> {
    let sink = sink_ns
        .run(|| std::net::UdpSocket::bind(to))
        .unwrap()
        .unwrap();
    let socket = ns
        .run(|| std::net::UdpSocket::bind("0.0.0.0:0"))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        let _sink = sink;
        let payload = [0xa5u8; 1472];
        let start = Instant::now();
        let mut sent = 0u64;
        while Instant::now() < deadline {
            let due = (start.elapsed().as_secs_f64() * rate_bps as f64 / 8.0) as u64;
            while sent < due {
                socket.send_to(&payload, to)?;
                sent += payload.len() as u64;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(sent)
    })
}
