//! The application data an external client reports when it finishes a session, format
//! `qoelab.app-qoe.v1` (documented in `workload/FORMATS.md`): a JSON object whose known fields
//! have the names, types and units of the built-in video QoE record (`qoelab.video-qoe.v1`,
//! which is accepted whole), and whose other fields are labels holding a number, boolean,
//! string or null. Every top-level scalar becomes a `label_<key>` column of the session's row;
//! `stalls` shades the session's throughput chart.
//!
//! Every error names the field (`application.stall_ratio`), the value and what is accepted.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::ingest::unix_ms_ok;

/// The format of an external client's application data.
pub const APP_QOE_SCHEMA: &str = "qoelab.app-qoe.v1";

/// What a known field holds (besides `null`: not measured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// An integer ≥ 0.
    Count,
    /// A number ≥ 0.
    NonNegative,
    /// A number in [0, 1].
    Ratio,
    /// Any number.
    Number,
    /// A boolean.
    Flag,
    /// A QoE class.
    Class,
    /// A string.
    Text,
    /// Milliseconds since the Unix epoch.
    UnixMs,
    /// The format's name.
    Schema,
    /// Stall intervals.
    Stalls,
    /// Integers ≥ 0.
    Counts,
    /// Objects of numbers ≥ 0 (the video record's segments).
    Records,
}

impl Rule {
    fn accepted(self) -> &'static str {
        match self {
            Rule::Count => "an integer ≥ 0",
            Rule::NonNegative => "a number ≥ 0",
            Rule::Ratio => "a number in [0, 1]",
            Rule::Number => "a number",
            Rule::Flag => "true or false",
            Rule::Class => "low, medium or high",
            Rule::Text => "a string",
            Rule::UnixMs => "Unix time in milliseconds (13 digits)",
            Rule::Schema => "qoelab.app-qoe.v1 or qoelab.video-qoe.v1 (or no schema)",
            Rule::Stalls => "an array of {\"start_s\": a number ≥ 0, \"duration_s\": a number > 0}",
            Rule::Counts => "an array of integers ≥ 0",
            Rule::Records => "an array of objects whose values are numbers ≥ 0",
        }
    }
}

/// The known fields: those of the video QoE record, with its types and units.
const KNOWN: [(&str, Rule); 24] = [
    ("schema", Rule::Schema),
    ("session", Rule::Text),
    ("server", Rule::Text),
    ("abr", Rule::Text),
    ("started_unix_ms", Rule::UnixMs),
    ("duration_s", Rule::NonNegative),
    ("media_s", Rule::NonNegative),
    ("segment_duration_s", Rule::NonNegative),
    ("ladder_bps", Rule::Counts),
    ("startup_delay_s", Rule::NonNegative),
    ("stall_count", Rule::Count),
    ("stall_time_s", Rule::NonNegative),
    ("stall_ratio", Rule::Ratio),
    ("avg_bitrate_bps", Rule::Count),
    ("switch_count", Rule::Count),
    ("switch_magnitude_bps", Rule::Count),
    ("bytes", Rule::Count),
    ("avg_throughput_bps", Rule::Count),
    ("qoe_lin", Rule::Number),
    ("qoe_log", Rule::Number),
    ("stall", Rule::Flag),
    ("qoe_class", Rule::Class),
    ("stalls", Rule::Stalls),
    ("segments", Rule::Records),
];

/// Longest label name, in characters.
const MAX_LABEL_NAME: usize = 64;

/// Checks an external client's application data against `qoelab.app-qoe.v1`.
pub fn check(data: &Value) -> Result<()> {
    let Value::Object(map) = data else {
        return Err(Error::invalid(
            "application",
            shown(data),
            "a JSON object (qoelab.app-qoe.v1), e.g. {\"stall_count\": 0, \"startup_delay_s\": 1.2}",
        ));
    };
    for (key, value) in map {
        let field = format!("application.{key}");
        match KNOWN.iter().find(|(name, _)| name == key) {
            Some((_, rule)) => check_known(&field, *rule, value)?,
            None => check_label(&field, key, value)?,
        }
    }
    Ok(())
}

/// A field the format does not define: a label named by `key`.
fn check_label(field: &str, key: &str, value: &Value) -> Result<()> {
    let name_ok = (1..=MAX_LABEL_NAME).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !name_ok {
        return Err(Error::invalid(
            field,
            key,
            format!(
                "a field name of 1 to {MAX_LABEL_NAME} lowercase letters, digits and _ \
                 (it becomes the column label_NAME)"
            ),
        ));
    }
    if value.is_array() || value.is_object() {
        return Err(Error::invalid(
            field,
            shown(value),
            "a number, boolean, string or null (a label); only stalls, segments and ladder_bps \
             hold arrays",
        ));
    }
    Ok(())
}

fn check_known(field: &str, rule: Rule, v: &Value) -> Result<()> {
    if v.is_null() && rule != Rule::Schema {
        return Ok(());
    }
    let ok = match rule {
        Rule::Count => v.as_u64().is_some(),
        Rule::NonNegative => v.as_f64().is_some_and(|x| x >= 0.0),
        Rule::Ratio => v.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)),
        Rule::Number => v.is_number(),
        Rule::Flag => v.is_boolean(),
        Rule::Class => matches!(v.as_str(), Some("low" | "medium" | "high")),
        Rule::Text => v.is_string(),
        Rule::UnixMs => {
            if let Some(ms) = v.as_i64() {
                return unix_ms_ok(field.to_string(), ms);
            }
            false
        }
        Rule::Schema => matches!(
            v.as_str(),
            Some(APP_QOE_SCHEMA | qoelab_workload::video::QOE_SCHEMA)
        ),
        Rule::Stalls | Rule::Counts | Rule::Records => {
            if let Some(items) = v.as_array() {
                return items.iter().enumerate().try_for_each(|(i, item)| {
                    let at = format!("{field}[{i}]");
                    match rule {
                        Rule::Stalls => check_stall(&at, item),
                        Rule::Counts => check_known(&at, Rule::Count, item),
                        _ => check_record(&at, item),
                    }
                });
            }
            false
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, shown(v), rule.accepted()))
    }
}

/// One stall: `{"start_s": ≥ 0, "duration_s": > 0}`, nothing else.
fn check_stall(at: &str, item: &Value) -> Result<()> {
    let Some(stall) = item.as_object() else {
        return Err(Error::invalid(at, shown(item), Rule::Stalls.accepted()));
    };
    if let Some(other) = stall.keys().find(|k| *k != "start_s" && *k != "duration_s") {
        return Err(Error::invalid(
            format!("{at}.{other}"),
            shown(&stall[other]),
            "no such field: a stall has start_s and duration_s",
        ));
    }
    let number = |name: &str, ok: fn(f64) -> bool, accepted: &str| {
        let value = stall.get(name);
        if value.and_then(Value::as_f64).is_some_and(ok) {
            Ok(())
        } else {
            Err(Error::invalid(
                format!("{at}.{name}"),
                value.map_or_else(|| "(missing)".to_string(), shown),
                accepted,
            ))
        }
    };
    number(
        "start_s",
        |x| x >= 0.0,
        "a number ≥ 0 (seconds since the session's start)",
    )?;
    number("duration_s", |x| x > 0.0, "a number > 0 (seconds)")
}

/// One segment of the video record: an object of numbers ≥ 0.
fn check_record(at: &str, item: &Value) -> Result<()> {
    let Some(record) = item.as_object() else {
        return Err(Error::invalid(at, shown(item), Rule::Records.accepted()));
    };
    for (key, value) in record {
        if !value.as_f64().is_some_and(|x| x >= 0.0) {
            return Err(Error::invalid(
                format!("{at}.{key}"),
                shown(value),
                "a number ≥ 0",
            ));
        }
    }
    Ok(())
}

/// A value as shown in a message: strings as they are, anything else as JSON, cut after 80
/// characters.
fn shown(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(data: Value) -> String {
        check(&data).unwrap_err().to_string()
    }

    #[test]
    fn records_of_the_format_and_of_the_video_player_pass() {
        check(&json!({
            "schema": "qoelab.app-qoe.v1", "stall_count": 1, "stall_time_s": 2.5,
            "startup_delay_s": 0.8, "stall_ratio": 0.04, "avg_bitrate_bps": 1_850_000,
            "switch_count": 3, "qoe_lin": -0.2, "qoe_log": 0.4, "stall": true,
            "qoe_class": "medium", "stalls": [{"start_s": 10, "duration_s": 2.5}],
            "player": "exoplayer", "cdn_hit": false, "rebuffer_events_5s": 2, "note": null,
            "startup_delay_s_p95": null
        }))
        .unwrap();
        check(&json!({})).unwrap();
        let record = json!({
            "schema": "qoelab.video-qoe.v1", "session": null, "server": "http://198.18.2.2:8080",
            "abr": "mpc", "started_unix_ms": 1_700_000_000_000u64, "duration_s": 30.1,
            "media_s": 28.0, "segment_duration_s": 4.0, "ladder_bps": [350_000, 750_000],
            "switch_magnitude_bps": 400_000, "bytes": 2_000_000, "avg_throughput_bps": 2_500_000,
            "segments": [{"index": 0, "level": 1, "bitrate_bps": 750_000, "bytes": 375_000,
                "requested_s": 0.0, "ttfb_s": 0.01, "download_s": 1.2, "throughput_bps": 2_500_000,
                "buffer_s": 4.0, "rebuffer_s": 0.0}]
        });
        check(&record).unwrap();
    }

    #[test]
    fn every_refusal_names_the_field_the_value_and_the_accepted_form() {
        for (data, expected) in [
            (
                json!([1, 2]),
                "application = '[1,2]' is not accepted: a JSON object",
            ),
            (
                json!({"stall_count": -1}),
                "application.stall_count = '-1' is not accepted: an integer ≥ 0",
            ),
            (
                json!({"stall_count": 1.5}),
                "application.stall_count = '1.5' is not accepted: an integer ≥ 0",
            ),
            (
                json!({"startup_delay_s": "slow"}),
                "application.startup_delay_s = 'slow' is not accepted: a number ≥ 0",
            ),
            (
                json!({"stall_ratio": 1.2}),
                "application.stall_ratio = '1.2' is not accepted: a number in [0, 1]",
            ),
            (
                json!({"qoe_class": "great"}),
                "application.qoe_class = 'great' is not accepted: low, medium or high",
            ),
            (
                json!({"stall": 1}),
                "application.stall = '1' is not accepted: true or false",
            ),
            (
                json!({"schema": "qoelab.app-qoe.v2"}),
                "application.schema = 'qoelab.app-qoe.v2' is not accepted: qoelab.app-qoe.v1",
            ),
            (
                json!({"started_unix_ms": 1_700_000_000}),
                "application.started_unix_ms = '1700000000' is not accepted: Unix time in milliseconds",
            ),
            (
                json!({"stalls": [{"start_s": 1, "duration_s": 0}]}),
                "application.stalls[0].duration_s = '0' is not accepted: a number > 0",
            ),
            (
                json!({"stalls": [{"start_s": 1, "duration_s": 1}, {"duration_s": 1}]}),
                "application.stalls[1].start_s = '(missing)' is not accepted: a number ≥ 0",
            ),
            (
                json!({"stalls": [{"start_s": 1, "end_s": 2}]}),
                "application.stalls[0].end_s = '2' is not accepted: no such field",
            ),
            (
                json!({"stalls": 2}),
                "application.stalls = '2' is not accepted: an array of {\"start_s\"",
            ),
            (
                json!({"ladder_bps": [1, -2]}),
                "application.ladder_bps[1] = '-2' is not accepted: an integer ≥ 0",
            ),
            (
                json!({"segments": [{"bytes": "many"}]}),
                "application.segments[0].bytes = 'many' is not accepted: a number ≥ 0",
            ),
            (
                json!({"buffer": {"mean_s": 3}}),
                "application.buffer = '{\"mean_s\":3}' is not accepted: a number, boolean, string or null",
            ),
            (
                json!({"Player-Name": "x"}),
                "application.Player-Name = 'Player-Name' is not accepted: a field name of 1 to 64 lowercase letters",
            ),
        ] {
            let err = refused(data.clone());
            assert!(err.contains(expected), "{data}: {err}");
        }
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let err = refused(json!({"extra": vec![1; 1000]}));
        assert!(err.contains('…') && err.len() < 300, "{err}");
    }
}
