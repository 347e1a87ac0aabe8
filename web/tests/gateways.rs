//! One server, several gateways: campaigns choose their gateway (refused with 422 naming
//! `gateway` for one the server does not have), the dashboard and `/metrics` show every
//! gateway's agent, campaign and session pages name the gateway. Over scripted links, then
//! end to end over two real labs, each with its own agent, whose sessions run side by side and
//! are captured on their own lab's router (the lab test needs root).

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use common::{Client, FakeAgent, ScriptedLink, TestDb, wait_for_status};
use qoelab_collector::Db;
use qoelab_collector::appliance::LabAppliance;
use qoelab_collector::events::Events;
use qoelab_collector::gateways::{Gateways, Multiplexer};
use qoelab_collector::runner::{Control, Runner};
use qoelab_lab::Lab;
use qoelab_web::{AgentView, App, ClientView};

/// A scripted server with gateways `gw-a` (the fake agent's view) and `gw-b` (no agent).
fn scripted(db: &Db, shutdown: &CancellationToken) -> App {
    let gateways = Gateways::new(
        db.clone(),
        Events::default(),
        vec!["gw-a".into(), "gw-b".into()],
    );
    let runners: Vec<Arc<dyn Control>> = (0..2)
        .map(|at| {
            let link = ScriptedLink::default();
            let runner = Runner::on_gateway(&gateways, at, link.clone(), link);
            tokio::spawn(runner.clone().run(shutdown.clone()));
            runner as Arc<dyn Control>
        })
        .collect();
    let agent: Arc<dyn AgentView> = Arc::new(FakeAgent);
    App::with_agents(
        Arc::new(Multiplexer::new(gateways, runners)),
        vec![("gw-a".into(), agent)],
        None,
    )
}

fn campaign(gateway: Option<&str>, workload: Value) -> Value {
    let mut spec = json!({"name": "gw", "sessions": 1, "duration_s": 0.3, "limits": ["2mbit"],
        "workload": workload, "start": true});
    if let Some(g) = gateway {
        spec["gateway"] = json!(g);
    }
    spec
}

fn video() -> Value {
    json!({"kind": "video", "abr": "buffer"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_choose_their_gateway_and_the_pages_show_every_gateway() {
    let t = TestDb::sqlite().await;
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let c = Client::new(&qoelab_web::router(scripted(&t.db, &shutdown)));

    let refused = c
        .post_json("/api/v1/campaigns", &campaign(Some("gw-z"), video()))
        .await
        .expect(422)
        .json();
    assert_eq!(refused["field"], "gateway");
    assert_eq!(refused["value"], "gw-z");
    assert_eq!(
        refused["accepted"],
        "one of this server's gateways: gw-a, gw-b"
    );
    assert_eq!(
        c.api("/api/v1/campaigns").await,
        json!([]),
        "nothing stored"
    );

    let form = c.page("/campaigns/new").await;
    assert!(
        form.contains(r#"<select id="gateway" name="gateway">"#)
            && form.contains(r#"<option value="gw-b">"#),
        "the form offers the gateways: {form}"
    );
    let fields = [
        ("name", "by form"),
        ("sessions", "1"),
        ("duration", "1s"),
        ("limits", "2mbit"),
        ("gateway", "gw-z"),
    ];
    let page = c.post_form("/campaigns", &fields).await.expect(422).text();
    assert!(
        page.contains(r#"data-error-for="gateway""#) && page.contains("gw-a, gw-b"),
        "the message is next to the gateway field: {page}"
    );

    let on_b = c
        .post_json("/api/v1/campaigns", &campaign(Some("gw-b"), video()))
        .await
        .expect(201)
        .json();
    assert_eq!(on_b["spec"]["gateway"], "gw-b");
    let on_first = c
        .post_json("/api/v1/campaigns", &campaign(None, video()))
        .await
        .expect(201)
        .json();
    for id in [&on_b["id"], &on_first["id"]] {
        wait_for_status(&c, id.as_i64().unwrap(), "done").await;
    }
    let page = c.page(&format!("/campaigns/{}", on_b["id"])).await;
    assert!(page.contains("<dt>Gateway</dt><dd>gw-b</dd>"), "{page}");
    let page = c.page(&format!("/campaigns/{}", on_first["id"])).await;
    assert!(
        page.contains("<dt>Gateway</dt><dd>gw-a</dd>"),
        "no gateway named: the first: {page}"
    );
    let sessions = c
        .api(&format!("/api/v1/sessions?campaign_id={}", on_b["id"]))
        .await;
    let session = &sessions["sessions"][0];
    assert_eq!(session["status"], "done", "{session}");
    let page = c.page(&format!("/sessions/{}", session["id"])).await;
    assert!(page.contains("<dt>Gateway</dt><dd>gw-b</dd>"), "{page}");

    let dashboard = c.page("/").await;
    for expected in [
        "Gateway gw-a",
        "Gateway gw-b",
        r#"data-refresh="/agent?gateway=gw-b""#,
        "agent connected",
        "agent not connected",
        "cam-1",
    ] {
        assert!(dashboard.contains(expected), "{expected} in {dashboard}");
    }
    assert!(c.page("/agent?gateway=gw-a").await.contains("7100:3"));
    assert!(
        c.page("/agent?gateway=gw-b")
            .await
            .contains("agent not connected")
    );
    let b = c.api("/api/v1/agent?gateway=gw-b").await;
    assert_eq!(
        (&b["gateway"], &b["connected"]),
        (&json!("gw-b"), &json!(false))
    );
    let first = c.api("/api/v1/agent").await;
    assert_eq!(
        (&first["gateway"], &first["connected"]),
        (&json!("gw-a"), &json!(true))
    );
    let unknown = c.get("/api/v1/agent?gateway=gw-z").await.expect(422);
    assert_eq!(unknown.field(), "gateway");

    let metrics = c.page("/metrics").await;
    for line in [
        r#"qoelab_agent_up{gateway="gw-a"} 1"#,
        r#"qoelab_agent_up{gateway="gw-b"} 0"#,
        r#"qoelab_class_drops_total{gateway="gw-a",iface="qlt-wan",netns="qlt-router",direction="egress",class="cam-1",classid="7100:3"} 4"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_one_gateway_refuses_others_and_asks_no_gateway() {
    let t = TestDb::sqlite().await;
    let s = common::serve(&t.db, None, None);
    let c = Client::new(&s.router);
    let refused = c
        .post_json("/api/v1/campaigns", &campaign(Some("gw-b"), video()))
        .await
        .expect(422);
    assert_eq!(refused.field(), "gateway");
    assert!(
        refused.text().contains("gateways: default"),
        "{}",
        refused.text()
    );
    let form = c.page("/campaigns/new").await;
    assert!(
        !form.contains(r#"name="gateway""#),
        "one gateway: no choice"
    );
    let page = c.page("/").await;
    assert!(page.contains("Gateway default"), "{page}");
}

/// Two labs, each a gateway with its own in-process agent, workload servers and runner, under
/// one app. Stopped by [`TwoLabs::stop`]; on a failure, dropping it restores the links and
/// removes the labs.
struct TwoLabs {
    appliances: Vec<LabAppliance>,
    app: App,
    shutdown: CancellationToken,
    _dirs: Vec<tempfile::TempDir>,
}

impl TwoLabs {
    fn start(db: &Db) -> TwoLabs {
        let names = vec!["gw-a".to_string(), "gw-b".to_string()];
        let gateways = Gateways::new(db.clone(), Events::default(), names.clone());
        let shutdown = CancellationToken::new();
        let (mut appliances, mut dirs, mut runners, mut views) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (at, name) in names.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let lab = Lab::standard(None).unwrap();
            let appliance = LabAppliance::on_gateway(&gateways, at, lab, dir.path()).unwrap();
            tokio::spawn(appliance.runner().clone().run(shutdown.clone()));
            runners.push(appliance.runner().clone() as Arc<dyn Control>);
            let view: Arc<dyn AgentView> =
                Arc::new(ClientView::new(appliance.agent().clone(), 1000));
            views.push((name.clone(), view));
            appliances.push(appliance);
            dirs.push(dir);
        }
        let control = Arc::new(Multiplexer::new(gateways, runners));
        TwoLabs {
            appliances,
            app: App::with_agents(control, views, None),
            shutdown,
            _dirs: dirs,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        for appliance in self.appliances {
            assert_eq!(appliance.stop().await, Vec::<String>::new());
        }
    }
}

/// The server ports of a stored session's flows that carried bytes.
fn server_ports(detail: &Value) -> Vec<u64> {
    let mut ports: Vec<u64> = detail["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["s2c_ip_bytes"].as_u64().unwrap_or(0) + f["c2s_ip_bytes"].as_u64().unwrap_or(0) > 0
        })
        .filter_map(|f| f["server_port"].as_u64())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_labs_run_their_gateways_campaigns_side_by_side_under_one_server() {
    let t = TestDb::sqlite().await;
    let labs = TwoLabs::start(&t.db);
    let c = Client::new(&qoelab_web::router(labs.app.clone()));
    let create = |gateway: &str, limit: &str, workload: Value| {
        json!({"name": format!("on {gateway}"), "sessions": 1, "duration_s": 4, "warmup_s": 1,
            "limits": [limit], "workload": workload, "gateway": gateway, "start": true})
    };
    let video = c
        .post_json("/api/v1/campaigns", &create("gw-a", "4mbit", video()))
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap();
    let iot = json!({"kind": "iot", "analytics": [{"kind": "object-detection", "knob": 1.0}]});
    let iot = c
        .post_json("/api/v1/campaigns", &create("gw-b", "1mbit", iot))
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap();

    // Both gateways shape at once, each its own lab's router, with its own campaign's limit.
    let uplinks: Vec<String> = labs.appliances.iter().map(|a| a.lab().uplink()).collect();
    let mut seen_both = false;
    for _ in 0..300 {
        let mut rates = Vec::new();
        for appliance in &labs.appliances {
            let shaped = appliance.agent().interfaces().await.unwrap();
            rates.push(
                shaped
                    .iter()
                    .find(|s| s.iface.name == appliance.lab().uplink())
                    .and_then(|s| s.plan.egress.as_ref())
                    .map(|e| e.rate_bps.bps()),
            );
        }
        if rates == [Some(4_000_000), Some(1_000_000)] {
            seen_both = true;
            let metrics = c.page("/metrics").await;
            for (gateway, uplink) in ["gw-a", "gw-b"].iter().zip(&uplinks) {
                let shaped =
                    format!(r#"qoelab_class_rate_bps{{gateway="{gateway}",iface="{uplink}""#);
                assert!(metrics.contains(&shaped), "{shaped} in\n{metrics}");
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen_both, "the two labs were never shaped at the same time");

    for id in [video, iot] {
        let done = wait_for_status(&c, id, "done").await;
        assert_eq!(done["progress"]["done"], 1, "{done}");
    }
    // Each session's capture came from its own lab: the video's flows go to the video server
    // (port 8080) of gw-a's lab, the IoT uploads to the sink (port 9000) of gw-b's.
    for (id, port) in [(video, 8080), (iot, 9000)] {
        let sessions = c.api(&format!("/api/v1/sessions?campaign_id={id}")).await;
        let session = &sessions["sessions"][0];
        assert!(session["capture_id"].is_string(), "{session}");
        let detail = c.api(&format!("/api/v1/sessions/{}", session["id"])).await;
        assert_eq!(server_ports(&detail), [port], "campaign {id}: {detail}");
    }

    let dashboard = c.page("/").await;
    assert!(
        dashboard.contains("Gateway gw-a") && dashboard.contains("Gateway gw-b"),
        "{dashboard}"
    );
    assert_eq!(
        dashboard.matches("agent connected").count(),
        2,
        "both agents answer: {dashboard}"
    );
    let metrics = c.page("/metrics").await;
    for gateway in ["gw-a", "gw-b"] {
        let up = format!(r#"qoelab_agent_up{{gateway="{gateway}"}} 1"#);
        assert!(metrics.contains(&up), "{up} in\n{metrics}");
    }
    labs.stop().await;
}
