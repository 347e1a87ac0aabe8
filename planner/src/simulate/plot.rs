//! A self-contained SVG of a simulation (no scripts, no external resources): weighted QoS,
//! upload used and saved against the budget, and analytics at the edge and in the cloud, per
//! minute.

use std::fmt::Write;

use super::{Report, Row};

const WIDTH: f64 = 960.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 50.0;
const PANEL: f64 = 190.0;
const GAP: f64 = 60.0;

/// One line of a panel; `None` leaves a gap.
struct Series {
    name: &'static str,
    color: &'static str,
    dashed: bool,
    values: Vec<Option<f64>>,
}

struct Panel {
    title: &'static str,
    series: Vec<Series>,
}

fn series(
    name: &'static str,
    color: &'static str,
    rows: &[Row],
    f: impl Fn(&Row) -> f64,
) -> Series {
    Series {
        name,
        color,
        dashed: false,
        values: rows.iter().map(|r| Some(f(r))).collect(),
    }
}

/// The report as an SVG document titled `title`.
pub fn svg(report: &Report, title: &str) -> String {
    let rows = &report.rows;
    let budget_kbps = report.config.upload_bps as f64 / 1000.0;
    let panels = [
        Panel {
            title: "Weighted QoS (Σ w·QoS / Σ w)",
            // Minutes without analytics have no QoS: a gap, not a drop to 0.
            series: vec![Series {
                values: rows
                    .iter()
                    .map(|r| (r.running > 0).then_some(r.weighted_qos))
                    .collect(),
                ..series("weighted QoS", "#1f77b4", rows, |_| 0.0)
            }],
        },
        Panel {
            title: "Upload (kbit/s)",
            series: vec![
                Series {
                    name: "budget",
                    color: "#7f7f7f",
                    dashed: true,
                    values: vec![Some(budget_kbps); rows.len()],
                },
                series("allocated", "#ff7f0e", rows, |r| {
                    r.upload_bps as f64 / 1000.0
                }),
                series("saved by edge", "#2ca02c", rows, |r| {
                    r.saved_bps as f64 / 1000.0
                }),
            ],
        },
        Panel {
            title: "Analytics running",
            series: vec![
                series("at the edge", "#2ca02c", rows, |r| f64::from(r.edge)),
                series("in the cloud", "#d62728", rows, |r| f64::from(r.cloud)),
                series("not admitted", "#7f7f7f", rows, |r| {
                    f64::from(r.running - r.admitted)
                }),
            ],
        },
    ];
    let height = TOP + panels.len() as f64 * (PANEL + GAP);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let minutes = rows.len().max(2) as f64 - 1.0;
    for (p, panel) in panels.iter().enumerate() {
        let top = TOP + p as f64 * (PANEL + GAP);
        draw_panel(&mut out, panel, top, minutes);
    }
    out.push_str("</svg>\n");
    out
}

fn draw_panel(out: &mut String, panel: &Panel, top: f64, minutes: f64) {
    let plot_width = WIDTH - LEFT - RIGHT;
    let y_max = panel
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .fold(0.0f64, f64::max);
    let y_step = nice_step(if y_max > 0.0 { y_max } else { 1.0 }, 4);
    let y_top = (y_max / y_step).ceil().max(1.0) * y_step;
    let x = |minute: f64| LEFT + minute / minutes * plot_width;
    let y = |value: f64| top + PANEL - value / y_top * PANEL;
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-weight="bold">{}</text>"#,
        top - 8.0,
        escape(panel.title)
    );
    // Grid and y ticks.
    let mut tick = 0.0;
    while tick <= y_top + y_step * 1e-9 {
        let ty = y(tick);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{ty:.1}" x2="{:.1}" y2="{ty:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_width,
            LEFT - 6.0,
            ty + 4.0,
            label(tick)
        );
        tick += y_step;
    }
    // x ticks.
    let x_step = nice_step(minutes, 8);
    let mut minute = 0.0;
    while minute <= minutes + 1e-9 {
        let tx = x(minute);
        let _ = writeln!(
            out,
            r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#000"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            top + PANEL,
            top + PANEL + 4.0,
            top + PANEL + 18.0,
            label(minute)
        );
        minute += x_step;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top}" width="{plot_width}" height="{PANEL}" fill="none" stroke="#000"/><text x="{:.1}" y="{:.1}" text-anchor="middle">minute</text>"##,
        LEFT + plot_width / 2.0,
        top + PANEL + 34.0
    );
    for (i, s) in panel.series.iter().enumerate() {
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        // One polyline per run of minutes with values.
        let points: Vec<Option<String>> = s
            .values
            .iter()
            .enumerate()
            .map(|(m, v)| v.map(|v| format!("{:.1},{:.1}", x(m as f64), y(v))))
            .collect();
        for run in points.split(Option::is_none).filter(|run| !run.is_empty()) {
            let run: Vec<&str> = run.iter().flatten().map(String::as_str).collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5"{dash} points="{}"/>"#,
                s.color,
                run.join(" ")
            );
        }
        let ly = top + 14.0 + i as f64 * 18.0;
        let lx = LEFT + plot_width + 12.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="3"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 18.0,
            s.color,
            lx + 24.0,
            ly + 4.0,
            escape(s.name)
        );
    }
}

/// A round tick step (1, 2 or 5 × 10ⁿ) giving about `ticks` ticks over `range`.
fn nice_step(range: f64, ticks: u32) -> f64 {
    let raw = range / f64::from(ticks);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    if step > 0.0 { step } else { 1.0 }
}

fn label(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(1.0, 4), 0.5);
        assert_eq!(nice_step(100.0, 8), 20.0);
        assert_eq!(nice_step(5000.0, 4), 2000.0);
        assert_eq!(label(0.5), "0.5");
        assert_eq!(label(2000.0), "2000");
        assert_eq!(escape("a<b&c"), "a&lt;b&amp;c");
    }
}
