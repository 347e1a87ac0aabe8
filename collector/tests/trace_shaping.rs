//! A bandwidth trace played on a lab's uplink through the in-process agent while a bulk TCP
//! upload crosses it: the rate follows each step, changed in place.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use qoelab_agent::local::LocalAgent;
use qoelab_collector::network::limit;
use qoelab_collector::trace_shaping::TraceShaper;
use qoelab_lab::{Lab, standard};
use qoelab_shaper::{Direction, IfaceRef, InterfacePlan};
use qoelab_units::Rate;
use qoelab_workload::trace::{self, Trace};
use tokio::time::Instant;

const LOAD_PORT: u16 = 5201;

/// A bulk TCP upload from the lab's client to its server until stopped (at most 60 s).
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Load {
    fn start(lab: &Lab) -> Load {
        let server = SocketAddr::from((standard::SERVER_ADDR, LOAD_PORT));
        let listener = lab
            .server()
            .unwrap()
            .run(|| TcpListener::bind(server))
            .unwrap()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let receiver = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept()?;
            let mut buf = vec![0; 1 << 16];
            while conn.read(&mut buf)? > 0 {}
            Ok(())
        });
        let stopped = stop.clone();
        let sender = lab
            .client()
            .unwrap()
            .spawn_thread(move || -> std::io::Result<()> {
                let mut conn = TcpStream::connect(server)?;
                let chunk = vec![0x5a; 1 << 16];
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while !stopped.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                    conn.write_all(&chunk)?;
                }
                conn.shutdown(std::net::Shutdown::Write)
            })
            .unwrap();
        let sender = std::thread::spawn(move || sender.join().expect("the sender")?);
        Load {
            stop,
            threads: vec![receiver, sender],
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let outcome = thread.join().expect("a load thread");
            if !std::thread::panicking() {
                outcome.expect("the load ran");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_trace_changes_the_rate_in_place_under_load() {
    let lab = Lab::standard(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent =
        LocalAgent::start(&dir.path().join("agent.sock"), &dir.path().join("state")).unwrap();
    let client = agent.client().clone();
    let uplink = IfaceRef::new(Some(lab.router().unwrap().name()), &lab.uplink());
    let start_plan = InterfacePlan {
        egress: Some(limit(Rate::from_bps(8_000_000), None)),
        ingress: None,
    };
    client.apply(&uplink, &start_plan).await.unwrap();
    let load = Load::start(&lab);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let trace = Trace::parse("0 8\n3 2\n6 6\n").unwrap();
    let mut shaper = TraceShaper::new(client.clone(), uplink.clone(), Direction::Egress);
    let start = Instant::now();
    let sampler = {
        let (client, uplink) = (client.clone(), uplink.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            for second in 0..=9u32 {
                tokio::time::sleep_until(start + Duration::from_secs(second.into())).await;
                let stats = client.stats(&uplink, 0).await.unwrap();
                let class = stats.class(Direction::Egress, "default").unwrap().clone();
                samples.push((start.elapsed(), class));
            }
            samples
        })
    };
    trace::play(&trace, &mut shaper).await.unwrap();
    let samples = sampler.await.unwrap();
    drop(load);

    let classid = &samples[0].1.classid;
    let mut failures = Vec::new();
    for (second, pair) in samples.windows(2).enumerate() {
        let ((t0, a), (t1, b)) = (&pair[0], &pair[1]);
        assert_eq!(&b.classid, classid, "the class stays in place");
        assert!(
            b.counters.bytes >= a.counters.bytes,
            "counters never go back"
        );
        let measured =
            (b.counters.bytes - a.counters.bytes) as f64 * 8.0 / (*t1 - *t0).as_secs_f64();
        let expected = trace.rate_at(second as f64 + 0.5) as f64;
        let first_of_step = trace.steps().iter().any(|s| s.time_s == second as f64);
        eprintln!(
            "second {second}: trace {:.1} Mbit/s, measured {:.3} Mbit/s ({:+.1}%){}",
            expected / 1e6,
            measured / 1e6,
            100.0 * (measured - expected) / expected,
            if first_of_step {
                ", a step's first"
            } else {
                ""
            }
        );
        if !first_of_step && (measured - expected).abs() > 0.10 * expected {
            failures.push(second);
        }
    }
    assert!(
        failures.is_empty(),
        "seconds off the trace by > 10%: {failures:?}"
    );
    let applied = shaper.applied();
    assert_eq!((applied.created, applied.deleted), (0, 0), "{applied:?}");
    assert!(
        applied.changed >= 2 * 2,
        "two steps changed the root and the default class"
    );
    let egress = client.plan(&uplink).await.unwrap().egress.unwrap();
    assert_eq!(egress.rate_bps.bps(), 6_000_000);
    assert!(agent.stop().await.is_empty());
}
