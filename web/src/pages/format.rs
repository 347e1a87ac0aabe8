//! How numbers, rates, times and states look on the pages.

use maud::{Markup, html};
use qoelab_collector::campaign::Progress;
use qoelab_units::{Limit, Rate};

/// A shaping limit as typed in forms: `2mbit`, `750kbit`, `unlimited`.
pub fn limit(rate_bps: Option<u64>) -> String {
    rate_bps
        .map_or(Limit::Unlimited, |r| Limit::Rate(Rate::from_bps(r)))
        .to_string()
}

/// A measured rate with three significant digits: `1.93 Mbit/s`.
pub fn rate(bps: f64) -> String {
    scaled(
        bps,
        &[(1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")],
        "bit/s",
    )
}

/// A byte count: `1.25 MB`.
pub fn bytes(n: f64) -> String {
    scaled(n, &[(1e9, "GB"), (1e6, "MB"), (1e3, "kB")], "B")
}

fn scaled(v: f64, units: &[(f64, &str)], base: &str) -> String {
    match units.iter().find(|(f, _)| v.abs() >= *f) {
        Some((f, unit)) => format!("{} {unit}", number(v / f)),
        None => format!("{} {base}", number(v)),
    }
}

/// A number with three significant digits (integers as they are).
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else if v.abs() >= 1.0 {
        2
    } else {
        3
    };
    format!("{v:.digits$}")
}

/// A share as a percentage: `93.1%`.
pub fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A Unix time in ms as `YYYY-MM-DD HH:MM UTC`.
pub fn when(ms: i64) -> String {
    qoelab_units::utc_minute((ms.max(0) / 1000) as u64)
}

/// Seconds as `1 h 5 min`, `2 min 3 s` or `4.2 s`.
pub fn seconds(s: f64) -> String {
    if s >= 3600.0 {
        format!(
            "{} h {} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    } else if s >= 60.0 {
        format!("{} min {} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{} s", number(s))
    }
}

/// A state as a coloured badge.
pub fn badge(status: impl std::fmt::Display) -> Markup {
    let text = status.to_string();
    html! { span class={ "badge " (text) } data-field="status" { (text) } }
}

/// A stacked bar of sessions per state.
pub fn progress_bar(p: &Progress) -> Markup {
    let total = p.total().max(1) as f64;
    let width = |n: u64| format!("width: {:.2}%", 100.0 * n as f64 / total);
    html! {
        div.progress title={ (p.ended()) " of " (p.total()) " sessions ended" } {
            span.done style=(width(p.done)) {}
            span.failed style=(width(p.failed)) {}
            span.discarded style=(width(p.discarded)) {}
            span.running style=(width(p.running)) {}
            span.pending style="width: 0" {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_naturally() {
        assert_eq!(limit(Some(750_000)), "750kbit");
        assert_eq!(limit(None), "unlimited");
        assert_eq!(rate(1_934_567.0), "1.93 Mbit/s");
        assert_eq!(rate(950.0), "950 bit/s");
        assert_eq!(bytes(1_250_000.0), "1.25 MB");
        assert_eq!(number(0.1234), "0.123");
        assert_eq!(number(f64::NAN), "–");
        assert_eq!(percent(0.9312), "93.1%");
        assert_eq!(seconds(125.0), "2 min 5 s");
        assert_eq!(seconds(3.25), "3.25 s");
        assert_eq!(when(951_782_400_000), "2000-02-29 00:00 UTC");
    }
}
