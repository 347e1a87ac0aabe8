//! Shaping in real labs with real TCP traffic: rates measured from the kernel's class counters.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{in_ns, plan, tc_show, tcp_sender, tcp_sink, udp_flow};
use qoelab_lab::{Lab, standard};
use qoelab_shaper::{Direction, Features, IfaceRef, RateChange, RateChanges, ShapeError, Shaper};
use qoelab_units::Rate;

fn server(port: u16) -> SocketAddr {
    SocketAddr::new(standard::SERVER_ADDR.into(), port)
}

fn client(port: u16) -> SocketAddr {
    SocketAddr::new(standard::CLIENT_ADDR.into(), port)
}

/// Egress classes `cam` (2 Mbit/s, TCP to port 5001) and `lidar` (8 Mbit/s, port 5002).
fn cam_and_lidar() -> qoelab_shaper::InterfacePlan {
    plan(
        "egress",
        &[("cam", "2mbit", 5001), ("lidar", "8mbit", 5002)],
    )
}

/// A lab, a shaper with a state dir of its own, the router's uplink, and the router's
/// namespace.
fn setup() -> (Lab, tempfile::TempDir, Shaper, IfaceRef, String) {
    let lab = Lab::standard(None).unwrap();
    let state = tempfile::tempdir().unwrap();
    let shaper = Shaper::open(state.path()).unwrap();
    let router = lab.router().unwrap().name().to_string();
    let iface = IfaceRef::new(Some(&router), &lab.uplink());
    (lab, state, shaper, iface, router)
}

fn assert_within(measured: u64, target: u64, tolerance: f64, what: &str) {
    let ratio = measured as f64 / target as f64;
    assert!(
        (ratio - 1.0).abs() <= tolerance,
        "{what}: measured {measured} bit/s for {target} bit/s ({:.1}%)",
        ratio * 100.0
    );
}

#[test]
fn two_analytics_get_their_rates_at_the_same_time() {
    let (lab, _state, shaper, iface, _) = setup();
    let report = shaper.apply(&iface, cam_and_lidar()).unwrap();
    assert!(
        report.created > 0 && report.changed == 0 && report.deleted == 0,
        "{report:?}"
    );
    let deadline = Instant::now() + TCP_SETTLING + Duration::from_secs(4);
    let sinks = [5001, 5002].map(|p| tcp_sink(lab.server().unwrap(), server(p), deadline));
    let senders = [5001, 5002].map(|p| tcp_sender(lab.client().unwrap(), server(p), deadline));
    std::thread::sleep(TCP_SETTLING);
    let stats = shaper.stats_over(&iface, Duration::from_secs(3)).unwrap();
    for (name, rate) in [("cam", 2_000_000), ("lidar", 8_000_000)] {
        let class = stats.class(Direction::Egress, name).unwrap();
        assert_within(class.measured_bps.unwrap(), rate, 0.05, name);
    }
    for handle in senders.into_iter().chain(
        sinks
            .into_iter()
            .map(|h| std::thread::spawn(move || h.join().unwrap().map(|_| 0))),
    ) {
        handle.join().unwrap().unwrap();
    }
    shaper.restore(&iface).unwrap();
}

/// How long TCP needs before a class runs at its rate: BBR (this machine's default) holds a
/// bandwidth sample from its first round trips for ten round trips, which a full 100 ms queue
/// stretches to about a second (slow start's overshoot with CUBIC is shorter); until then the
/// class sees a burst of drops and, now and then, a retransmission timeout.
const TCP_SETTLING: Duration = Duration::from_secs(2);

#[test]
fn ingress_is_shaped_through_an_ifb() {
    let (lab, _state, shaper, iface, router) = setup();
    let mut p = plan(
        "ingress",
        &[("down", "5mbit", 5003), ("down-udp", "2mbit", 5004)],
    );
    p.ingress.as_mut().unwrap().classes[1].matches =
        Some(serde_json::from_str(r#"{"protocol": "udp", "dst_port": 5004}"#).unwrap());
    shaper.apply(&iface, p).unwrap();
    assert!(
        in_ns(&router, &["ip", "-o", "link"]).contains("qlifb0"),
        "IFB in the router's namespace"
    );
    let deadline = Instant::now() + TCP_SETTLING + Duration::from_secs(4);
    // A TCP download, and UDP offered at twice its class's rate, through the router at once.
    let sink = tcp_sink(lab.client().unwrap(), client(5003), deadline);
    let sender = tcp_sender(lab.server().unwrap(), client(5003), deadline);
    let udp = udp_flow(
        lab.server().unwrap(),
        lab.client().unwrap(),
        client(5004),
        4_000_000,
        deadline,
    );
    std::thread::sleep(TCP_SETTLING);
    let stats = shaper.stats_over(&iface, Duration::from_secs(3)).unwrap();
    for (name, rate) in [("down", 5_000_000), ("down-udp", 2_000_000)] {
        let class = stats.class(Direction::Ingress, name).unwrap();
        assert_within(class.measured_bps.unwrap(), rate, 0.05, name);
    }
    sender.join().unwrap().unwrap();
    sink.join().unwrap().unwrap();
    udp.join().unwrap().unwrap();
    shaper.restore(&iface).unwrap();
    assert!(
        !in_ns(&router, &["ip", "-o", "link"]).contains("qlifb"),
        "IFB removed"
    );
    assert!(
        !tc_show(&router, &lab.uplink()).contains("ingress"),
        "ingress qdisc removed"
    );
}

#[test]
fn a_rate_change_under_load_never_lets_more_through() {
    let (lab, _state, shaper, iface, _) = setup();
    shaper
        .apply(&iface, plan("egress", &[("cam", "4mbit", 5001)]))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(7);
    let sink = tcp_sink(lab.server().unwrap(), server(5001), deadline);
    let sender = tcp_sender(lab.client().unwrap(), server(5001), deadline);
    std::thread::sleep(Duration::from_millis(500));
    let mut samples: Vec<(Instant, u64)> = Vec::new();
    let start = Instant::now();
    let mut changed = None;
    while start.elapsed() < Duration::from_secs(6) {
        let stats = shaper.stats(&iface).unwrap();
        samples.push((
            Instant::now(),
            stats
                .class(Direction::Egress, "cam")
                .unwrap()
                .counters
                .bytes,
        ));
        if changed.is_none() && start.elapsed() > Duration::from_secs(3) {
            let changes = RateChanges {
                egress: [(
                    "cam".to_string(),
                    RateChange {
                        rate_bps: Rate::from_bps(2_000_000),
                        ceil_bps: None,
                    },
                )]
                .into(),
                ..RateChanges::default()
            };
            let report = shaper.set_rates(&iface, &changes).unwrap();
            assert_eq!(
                (report.created, report.deleted),
                (0, 0),
                "changed in place: {report:?}"
            );
            assert_eq!(report.changed, 2, "the class and its queue");
            changed = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    sender.join().unwrap().unwrap();
    sink.join().unwrap().unwrap();
    let changed = changed.unwrap();
    let mut after = Vec::new();
    for (i, (t0, b0)) in samples.iter().enumerate() {
        let Some((t1, b1)) = samples[i..]
            .iter()
            .find(|(t, _)| t.duration_since(*t0) >= Duration::from_secs(1))
        else {
            break;
        };
        assert!(
            b1 >= b0,
            "the class's counters never went back: it was not recreated"
        );
        let bps = (b1 - b0) as f64 * 8.0 / t1.duration_since(*t0).as_secs_f64();
        assert!(bps <= 4_200_000.0, "a 1-second window had {bps:.0} bit/s");
        if *t0 > changed + Duration::from_millis(500) {
            after.push(bps);
        }
    }
    assert!(!after.is_empty());
    for bps in after {
        assert!(
            (1_800_000.0..=2_100_000.0).contains(&bps),
            "after the change: {bps:.0} bit/s"
        );
    }
}

#[test]
fn the_kernel_reads_back_what_was_planned_and_a_second_apply_sends_nothing() {
    let (lab, state, shaper, iface, router) = setup();
    let before = tc_show(&router, &lab.uplink());
    let mut p = plan(
        "egress",
        &[("cam", "2mbit", 5001), ("fast", "20gbit", 5002)],
    );
    p.egress.as_mut().unwrap().rate_bps = Rate::from_bps(40_000_000_000);
    shaper.apply(&iface, p.clone()).unwrap();
    let classes = in_ns(&router, &["tc", "class", "show", "dev", &lab.uplink()]);
    assert!(classes.contains("class htb 7100:3 parent 7100:1 leaf 7203: prio 0 rate 2Mbit ceil 2Mbit burst 1600b cburst 1600b"), "{classes}");
    assert!(
        classes.contains("rate 20Gbit ceil 20Gbit burst 2500000b"),
        "64-bit rates: {classes}"
    );
    let qdiscs = in_ns(&router, &["tc", "qdisc", "show", "dev", &lab.uplink()]);
    assert!(
        qdiscs.contains("qdisc bfifo 7203: parent 7100:3 limit 25000b"),
        "{qdiscs}"
    );
    assert!(!qdiscs.contains("quantum"), "no quantum warnings");
    assert_eq!(
        shaper.apply(&iface, p.clone()).unwrap().requests(),
        0,
        "idempotent"
    );
    // A restarted shaper adopts the interface and finds nothing to do.
    drop(shaper);
    let shaper = Shaper::open(state.path()).unwrap();
    assert_eq!(shaper.shaped(), std::slice::from_ref(&iface));
    assert_eq!(
        shaper.apply(&iface, p).unwrap().requests(),
        0,
        "adopted, no duplicates"
    );
    shaper.restore(&iface).unwrap();
    assert_eq!(tc_show(&router, &lab.uplink()), before, "restored exactly");
    assert!(shaper.shaped().is_empty());
}

#[test]
fn a_configured_root_qdisc_is_put_back_and_a_classful_one_is_not_touched() {
    let (lab, _state, shaper, iface, router) = setup();
    let wan = lab.uplink();
    in_ns(
        &router,
        &[
            "tc", "qdisc", "add", "dev", &wan, "root", "handle", "1:", "tbf", "rate", "50mbit",
            "burst", "31250", "limit", "100000",
        ],
    );
    let before = tc_show(&router, &wan);
    shaper
        .apply(&iface, plan("egress", &[("cam", "2mbit", 5001)]))
        .unwrap();
    assert!(tc_show(&router, &wan).contains("qdisc htb 7100: root"));
    shaper.restore(&iface).unwrap();
    assert_eq!(tc_show(&router, &wan), before, "the tbf is back as it was");

    in_ns(&router, &["tc", "qdisc", "del", "dev", &wan, "root"]);
    in_ns(
        &router,
        &[
            "tc", "qdisc", "add", "dev", &wan, "root", "handle", "1:", "htb",
        ],
    );
    in_ns(
        &router,
        &[
            "tc", "class", "add", "dev", &wan, "parent", "1:", "classid", "1:1", "htb", "rate",
            "1mbit",
        ],
    );
    in_ns(
        &router,
        &[
            "tc", "qdisc", "add", "dev", &wan, "parent", "1:1", "handle", "10:", "bfifo",
        ],
    );
    let theirs = tc_show(&router, &wan);
    let err = shaper
        .apply(&iface, plan("egress", &[("cam", "2mbit", 5001)]))
        .unwrap_err();
    assert!(
        matches!(err, qoelab_shaper::ShapeError::Conflict(_)),
        "{err}"
    );
    assert_eq!(tc_show(&router, &wan), theirs, "left alone");
}

fn rates(entries: &[(&str, u64)]) -> RateChanges {
    RateChanges {
        egress: entries
            .iter()
            .map(|(name, bps)| {
                let change = RateChange {
                    rate_bps: Rate::from_bps(*bps),
                    ceil_bps: None,
                };
                (name.to_string(), change)
            })
            .collect(),
        ..RateChanges::default()
    }
}

#[test]
fn rate_changes_win_over_foreign_changes_and_repair_what_was_removed() {
    let (lab, state, shaper, iface, router) = setup();
    let wan = lab.uplink();
    let classes = || in_ns(&router, &["tc", "class", "show", "dev", &wan]);
    shaper.apply(&iface, cam_and_lidar()).unwrap();

    // Someone changes a class behind our back; asking for the rate we had recorded still sets it.
    in_ns(
        &router,
        &[
            "tc", "class", "change", "dev", &wan, "parent", "7100:1", "classid", "7100:3", "htb",
            "rate", "3mbit",
        ],
    );
    let report = shaper
        .set_rates(&iface, &rates(&[("cam", 2_000_000)]))
        .unwrap();
    assert_eq!(
        (report.created, report.changed, report.deleted),
        (0, 2, 0),
        "the class and its queue, in place"
    );
    assert!(
        classes()
            .contains("class htb 7100:3 parent 7100:1 leaf 7203: prio 0 rate 2Mbit ceil 2Mbit"),
        "{}",
        classes()
    );

    // Someone replaces a class's queue: the in-place change is refused, and the kernel's state
    // is read and repaired.
    in_ns(
        &router,
        &["tc", "qdisc", "del", "dev", &wan, "parent", "7100:4"],
    );
    let report = shaper
        .set_rates(&iface, &rates(&[("lidar", 6_000_000)]))
        .unwrap();
    assert_eq!(
        (report.changed, report.created),
        (1, 1),
        "the class's rate in place, then its queue again: {report:?}"
    );
    let qdiscs = in_ns(&router, &["tc", "qdisc", "show", "dev", &wan]);
    assert!(
        qdiscs.contains("qdisc bfifo 7204: parent 7100:4 limit 75000b"),
        "{qdiscs}"
    );

    // Someone removes the whole tree (`tc qdisc del dev X root`): it is built again.
    in_ns(&router, &["tc", "qdisc", "del", "dev", &wan, "root"]);
    let report = shaper
        .set_rates(&iface, &rates(&[("cam", 1_000_000), ("default", 500_000)]))
        .unwrap();
    assert!(report.created >= 8, "{report:?}");
    assert!(
        classes().contains("class htb 7100:3 parent 7100:1 leaf 7203: prio 0 rate 1Mbit"),
        "{}",
        classes()
    );
    let filters = in_ns(&router, &["tc", "filter", "show", "dev", &wan]);
    assert!(filters.contains("flowid 7100:4"), "{filters}");

    // The rates survive a restart without restoring (the journal), and nothing needs sending.
    let expected = shaper.plan(&iface).unwrap();
    let cam = &expected.egress.as_ref().unwrap().classes[0];
    assert_eq!(cam.rate_bps, Rate::from_bps(1_000_000));
    drop(shaper);
    let shaper = Shaper::open(state.path()).unwrap();
    assert_eq!(shaper.plan(&iface), Some(expected.clone()));
    assert_eq!(shaper.apply(&iface, expected).unwrap().requests(), 0);
    shaper.restore(&iface).unwrap();
}

#[test]
fn a_kernel_refusal_part_way_is_reported_against_its_field_and_undone() {
    let (lab, _state, shaper, iface, router) = setup();
    if shaper.features().netem {
        eprintln!("this kernel has netem: no kind to refuse, nothing to test here");
        return;
    }
    let first = cam_and_lidar();
    shaper.apply(&iface, first.clone()).unwrap();
    let before = tc_show(&router, &lab.uplink());
    // The shaper believes netem is there (as if its module went away after the probe): the plan
    // passes validation, the cam class is changed, then the kernel refuses lidar's netem queue.
    shaper.assume_features(Features {
        netem: true,
        ..shaper.features()
    });
    let mut second = first.clone();
    let egress = second.egress.as_mut().unwrap();
    egress.classes[0].rate_bps = Rate::from_bps(3_000_000);
    egress.classes[1].impairment = Some(serde_json::from_str(r#"{"delay_ms": 20}"#).unwrap());
    let err = shaper.apply(&iface, second.clone()).unwrap_err();
    match &err {
        ShapeError::MissingFeature { field, feature } => {
            assert_eq!(field, "egress.classes[1].impairment");
            assert!(feature.contains("netem"), "{err}");
        }
        other => panic!("expected the missing feature, got {other:?}"),
    }
    assert_eq!(
        tc_show(&router, &lab.uplink()),
        before,
        "the first plan is back"
    );
    assert_eq!(shaper.plan(&iface), Some(first));
    assert!(!shaper.features().netem, "probed again");
    let err = shaper.apply(&iface, second).unwrap_err();
    assert!(
        matches!(&err, ShapeError::Invalid(e) if e.field == "egress.classes[1].impairment"),
        "now refused before anything is sent: {err}"
    );
    shaper.restore(&iface).unwrap();
}
