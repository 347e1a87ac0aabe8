//! Fills a database with one finished campaign of N stored sessions (flows, 1 s series, a QoE
//! record each), for benchmarks of the web server: `seed_sessions DATABASE_URL [N]`.

use std::time::Instant;

use qoelab_collector::Db;
use qoelab_collector::campaign::{self, CampaignSpec, CampaignStatus, Workload};
use qoelab_collector::session::{self, Bin, Results};
use qoelab_units::parse_limits;
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: seed_sessions DATABASE_URL [SESSIONS]")?;
    let n: u32 = args.next().map_or(Ok(10_000), |s| s.parse())?;
    let db = Db::connect(&url).await?;
    let spec = CampaignSpec {
        name: "benchmark".into(),
        sessions: n,
        duration_s: 10.0,
        warmup_s: 0.0,
        limits: parse_limits("0.75, 1.25, 2, 3, 5 mbit, unlimited")?,
        delays_ms: vec![],
        losses: vec![],
        workload: Workload::Video {
            abr: "buffer".into(),
        },
        seed: 1,
        gateway: None,
    };
    let started = Instant::now();
    let id = campaign::create(&db, &spec).await?;
    campaign::set_status(&db, id, &[CampaignStatus::Pending], CampaignStatus::Running).await?;
    while let Some(s) = session::claim_next(&db, id).await? {
        let bytes_per_s = s.profile.rate_bps.unwrap_or(20_000_000) / 8;
        let start_ms = s.started_ms.unwrap_or_default();
        let series = (0..10u32)
            .map(|i| Bin {
                flow_idx: None,
                bin: i,
                start_ms: start_ms + i64::from(i) * 1000,
                c2s_bytes: bytes_per_s / 50,
                s2c_bytes: bytes_per_s,
                c2s_pkts: bytes_per_s / 3000,
                s2c_pkts: bytes_per_s / 1500,
                c2s_retx: 0,
                s2c_retx: u64::from(i % 3 == 0),
            })
            .collect();
        let flow = json!({"protocol": "tcp", "client_ip": "198.18.1.2", "client_port": 40000,
            "server_ip": "198.18.2.2", "server_port": 80, "c2s_ip_bytes": bytes_per_s / 5, "s2c_ip_bytes": bytes_per_s * 10});
        let results = Results {
            warmup_ms: 0,
            capture_id: Some(format!("seed-{}", s.id)),
            bin_ms: 1000,
            flows: vec![flow.as_object().cloned().unwrap_or_default()],
            series,
            application: Some(
                json!({"stall_count": u8::from(bytes_per_s < 200_000), "qoe_class": "medium"}),
            ),
        };
        session::store_results(&db, &s, &results).await?;
    }
    campaign::set_status(&db, id, &[CampaignStatus::Running], CampaignStatus::Done).await?;
    eprintln!(
        "campaign {id}: {n} sessions stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
