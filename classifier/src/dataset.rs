//! [`Dataset`]: a frame turned into a feature matrix and classes, with a report of every choice.
//!
//! Feature selection by default takes every numeric column except the label, columns prefixed
//! `label_` (other labels of the same session) or `ctx_` (context such as the shaping profile),
//! identifiers, addresses, ports and absolute timestamps, text columns and constant columns. Each
//! exclusion is reported with its reason. Missing values are counted and handled by an explicit
//! [`MissingPolicy`]; nothing is silently zeroed.

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::choice::named_choices;
use crate::error::{Error, Result};
use crate::frame::{ColumnKind, Frame, base_name};
use crate::label::LabelSpec;

/// What to do with missing cells in the label and the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// Refuse the data and list the gaps (the default).
    #[default]
    Error,
    /// Drop rows with a missing label or feature.
    Drop,
    /// Drop rows with a missing label; fill features with the median of the training rows
    /// (computed inside each training fold, stored with the model for prediction).
    Median,
}

named_choices!(MissingPolicy, "--missing", [
    Error => "error",
    Drop => "drop",
    Median => "median",
]);

/// Which columns are features.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Names or globs (`*`, `?`) of the features; `None` = the default selection.
    pub include: Option<Vec<String>>,
    /// Names or globs removed from the selection.
    pub exclude: Vec<String>,
}

/// Everything needed to turn a frame into a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    /// The label column and class rule.
    pub label: LabelSpec,
    /// The features.
    pub features: FeatureSpec,
    /// Missing-value policy.
    pub missing: MissingPolicy,
    /// Accept label columns among the features (leakage guard off).
    pub force: bool,
}

/// A column left out of the features, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Excluded {
    /// The column.
    pub column: String,
    /// Why.
    pub reason: String,
}

/// Missing cells of one used column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingCount {
    /// The column.
    pub column: String,
    /// How many cells are missing.
    pub count: usize,
}

/// What happened while building the dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetReport {
    /// Rows in the frame.
    pub rows_read: usize,
    /// Rows dropped because the label was missing.
    pub dropped_missing_label: usize,
    /// Rows dropped because a feature was missing (policy `drop`).
    pub dropped_missing_features: usize,
    /// Feature cells filled by the median policy (over the whole dataset).
    pub imputed_cells: usize,
    /// Columns not used as features, with reasons.
    pub excluded: Vec<Excluded>,
    /// Missing cells per used column (label and features), zero counts omitted.
    pub missing: Vec<MissingCount>,
    /// Things the user should know (a class without rows, a tiny class).
    pub warnings: Vec<String>,
}

/// Labeled rows as a feature matrix.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Where the rows come from.
    pub source: String,
    /// Feature names, in column order of `x`.
    pub feature_names: Vec<String>,
    /// Class names, in class-index order.
    pub class_names: Vec<String>,
    /// One row per sample; NaN only where the median policy will fill in.
    pub x: Array2<f64>,
    /// Class index per row.
    pub y: Vec<usize>,
    /// The frame row of each dataset row (for messages).
    pub frame_rows: Vec<usize>,
    /// What was excluded, dropped and counted.
    pub report: DatasetReport,
    /// The policy the dataset was built with.
    pub missing: MissingPolicy,
}

impl Dataset {
    /// Builds the dataset: label, features, missing values, checks.
    pub fn from_frame(frame: &Frame, spec: &DatasetSpec) -> Result<Dataset> {
        let labels = spec.label.assign(frame)?;
        let label_index = frame.find(spec.label.column())?;
        let mut report = DatasetReport {
            rows_read: frame.nrows(),
            ..DatasetReport::default()
        };
        let features = select_features(frame, label_index, spec, &mut report)?;

        let columns = frame.columns();
        let used = std::iter::once(label_index).chain(features.iter().copied());
        report.missing = used
            .map(|i| MissingCount {
                column: columns[i].name().to_string(),
                count: columns[i].missing_count(),
            })
            .filter(|m| m.count > 0)
            .collect();
        if spec.missing == MissingPolicy::Error && !report.missing.is_empty() {
            return Err(Error::MissingValues {
                source_name: frame.source().to_string(),
                summary: missing_summary(frame, &report.missing),
            });
        }

        let mut frame_rows = Vec::with_capacity(frame.nrows());
        for (row, class) in labels.classes.iter().enumerate() {
            if class.is_none() {
                report.dropped_missing_label += 1;
                continue;
            }
            let gap = features.iter().any(|&f| columns[f].values()[row].is_nan());
            if gap && spec.missing == MissingPolicy::Drop {
                report.dropped_missing_features += 1;
                continue;
            }
            frame_rows.push(row);
        }
        let x = Array2::from_shape_fn((frame_rows.len(), features.len()), |(r, f)| {
            columns[features[f]].values()[frame_rows[r]]
        });
        report.imputed_cells = x.iter().filter(|v| v.is_nan()).count();
        let y: Vec<usize> = frame_rows
            .iter()
            .map(|&r| labels.classes[r].expect("rows without a label were dropped"))
            .collect();
        let dataset = Dataset {
            source: frame.source().to_string(),
            feature_names: features
                .iter()
                .map(|&f| columns[f].name().to_string())
                .collect(),
            class_names: labels.class_names,
            x,
            y,
            frame_rows,
            report,
            missing: spec.missing,
        };
        dataset.check_classes()
    }

    fn check_classes(mut self) -> Result<Dataset> {
        let counts = self.class_counts();
        let present: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] > 0).collect();
        match present[..] {
            [] => {
                return Err(Error::Empty {
                    source_name: self.source.clone(),
                    what: "no row has a label".to_string(),
                });
            }
            [only] => {
                return Err(Error::OneClass {
                    source_name: self.source.clone(),
                    detail: format!("{}: {} rows", self.class_names[only], counts[only]),
                });
            }
            _ => {}
        }
        for (class, &count) in self.class_names.iter().zip(&counts) {
            if count == 0 {
                self.report.warnings.push(format!(
                    "class '{class}' has no rows; it can never be predicted"
                ));
            }
        }
        Ok(self)
    }

    /// Rows per class, in class order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for &c in &self.y {
            counts[c] += 1;
        }
        counts
    }

    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.y.len()
    }

    /// A SHA-256 over feature names, class names, values and classes: equal data gives equal
    /// fingerprints whatever the file is called.
    pub fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        for name in self.feature_names.iter().chain(&self.class_names) {
            hash.update((name.len() as u64).to_le_bytes());
            hash.update(name.as_bytes());
        }
        hash.update((self.x.nrows() as u64).to_le_bytes());
        for &v in &self.x {
            let v = if v.is_nan() { f64::NAN } else { v };
            hash.update(v.to_bits().to_le_bytes());
        }
        for &c in &self.y {
            hash.update((c as u64).to_le_bytes());
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The feature columns' indices in frame order.
fn select_features(
    frame: &Frame,
    label_index: usize,
    spec: &DatasetSpec,
    report: &mut DatasetReport,
) -> Result<Vec<usize>> {
    let columns = frame.columns();
    let mut chosen: Vec<usize> = match &spec.features.include {
        Some(patterns) => {
            let chosen = resolve_patterns(frame, patterns)?;
            for &i in &chosen {
                check_explicit(frame, i, label_index, spec.force)?;
            }
            chosen
        }
        None => {
            let mut chosen = Vec::new();
            for (i, column) in columns.iter().enumerate() {
                match default_exclusion(frame, i, label_index)? {
                    Some(reason) => report.excluded.push(Excluded {
                        column: column.name().to_string(),
                        reason,
                    }),
                    None => chosen.push(i),
                }
            }
            chosen
        }
    };
    if !spec.features.exclude.is_empty() {
        let dropped = resolve_patterns(frame, &spec.features.exclude)?;
        chosen.retain(|i| !dropped.contains(i));
        for i in dropped {
            report.excluded.push(Excluded {
                column: columns[i].name().to_string(),
                reason: "--exclude".to_string(),
            });
        }
    }
    if chosen.is_empty() {
        let detail = if report.excluded.is_empty() {
            "nothing was selected".to_string()
        } else {
            report
                .excluded
                .iter()
                .map(|e| format!("{} ({})", e.column, e.reason))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::NoFeatures {
            source_name: frame.source().to_string(),
            detail,
        });
    }
    Ok(chosen)
}

/// Columns matching any pattern, in frame order; a pattern matching nothing is an error.
fn resolve_patterns(frame: &Frame, patterns: &[String]) -> Result<Vec<usize>> {
    let mut chosen = Vec::new();
    for pattern in patterns {
        let matched: Vec<usize> = if pattern.contains(['*', '?']) {
            (0..frame.columns().len())
                .filter(|&i| {
                    let name = frame.columns()[i].name();
                    glob(pattern, name) || glob(pattern, base_name(name))
                })
                .collect()
        } else {
            vec![frame.find(pattern)?]
        };
        if matched.is_empty() {
            return Err(Error::UnknownColumn {
                source_name: frame.source().to_string(),
                column: pattern.clone(),
                available: frame.column_list(),
            });
        }
        chosen.extend(matched);
    }
    chosen.sort_unstable();
    chosen.dedup();
    Ok(chosen)
}

/// An explicitly asked-for feature must be numeric and must not be a label.
fn check_explicit(frame: &Frame, i: usize, label_index: usize, force: bool) -> Result<()> {
    let column = &frame.columns()[i];
    if !force && i == label_index {
        return Err(Error::Leakage {
            what: format!("'{}' is the label column and also a feature", column.name()),
        });
    }
    if !force && is_label_like(column.name()) {
        return Err(Error::Leakage {
            what: format!(
                "'{}' is another label column (prefix label_) and would leak the outcome",
                column.name()
            ),
        });
    }
    frame.check_numeric(i, "; only numeric columns can be features")
}

/// Why a column is not a default feature, or `None` if it is one.
fn default_exclusion(frame: &Frame, i: usize, label_index: usize) -> Result<Option<String>> {
    let column = &frame.columns()[i];
    let name = column.name();
    let reason = if i == label_index {
        "the label"
    } else if is_label_like(name) {
        "label column (prefix label_)"
    } else if base_name(name).to_ascii_lowercase().starts_with("ctx_") {
        "context column (prefix ctx_); add with --features"
    } else if let Some(reason) = id_like(name) {
        reason
    } else {
        match column.kind() {
            ColumnKind::Text => "text",
            ColumnKind::Mixed => {
                let hint = format!(
                    "; fix the file, or leave the column out with --exclude '{name}' if it is not \
                     a feature"
                );
                frame.check_numeric(i, &hint)?;
                unreachable!("a mixed column has text cells")
            }
            ColumnKind::Numeric if column.missing_count() == frame.nrows() => "empty",
            ColumnKind::Numeric if is_constant(column.values()) => "constant",
            ColumnKind::Numeric => return Ok(None),
        }
    };
    Ok(Some(reason.to_string()))
}

fn is_label_like(name: &str) -> bool {
    base_name(name).to_ascii_lowercase().starts_with("label_")
}

fn is_constant(values: &[f64]) -> bool {
    let mut finite = values.iter().filter(|v| !v.is_nan());
    match finite.next() {
        Some(first) => finite.all(|v| v == first),
        None => true,
    }
}

/// Identifiers, addresses, ports and absolute timestamps: they name a session rather than
/// describe its traffic, so a model that uses them does not generalise.
fn id_like(name: &str) -> Option<&'static str> {
    let lower = base_name(name).to_ascii_lowercase();
    let tokens: Vec<&str> = lower.split(['_', '-', '.', ' ']).collect();
    let last = *tokens.last().unwrap_or(&"");
    const IDS: [&str; 8] = [
        "id", "ids", "uuid", "session", "campaign", "index", "row", "flow",
    ];
    const TIMES: [&str; 9] = [
        "timestamp",
        "time",
        "ts",
        "date",
        "datetime",
        "epoch",
        "first",
        "last",
        "created",
    ];
    if IDS.contains(&lower.as_str())
        || last == "id"
        || last == "uuid"
        || tokens.first() == Some(&"id")
        || lower.starts_with("unnamed")
    {
        Some("identifier; add with --features if meant")
    } else if tokens
        .iter()
        .any(|t| ["ip", "addr", "mac", "oui"].contains(t))
        && last != "version"
    {
        Some("address; add with --features if meant")
    } else if tokens.contains(&"port") {
        Some("port number; add with --features if meant")
    } else if TIMES.contains(&lower.as_str())
        || last == "at"
        || lower.ends_with("_seen_ms")
        || lower.ends_with("_timestamp")
    {
        Some("absolute time; add with --features if meant")
    } else {
        None
    }
}

/// Matches `*` (any run) and `?` (one character).
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ni));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ni = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn missing_summary(frame: &Frame, missing: &[MissingCount]) -> String {
    let columns = frame.columns();
    missing
        .iter()
        .take(8)
        .map(|m| {
            let column = &columns[frame.find(&m.column).expect("a frame column")];
            let first = column
                .values()
                .iter()
                .enumerate()
                .find(|(row, v)| v.is_nan() && column.text_at(*row).is_none())
                .map(|(row, _)| row)
                .expect("a missing cell");
            format!(
                "column '{}' has {} missing cell(s), the first at {}",
                m.column,
                m.count,
                frame.place(first)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
        + if missing.len() > 8 { "; …" } else { "" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Frame::read_csv(text.as_bytes(), "t.csv", None).unwrap()
    }

    fn spec(label: &str, include: Option<&[&str]>) -> DatasetSpec {
        DatasetSpec {
            label: LabelSpec::parse(label, None, None).unwrap(),
            features: FeatureSpec {
                include: include.map(|v| v.iter().map(|s| s.to_string()).collect()),
                exclude: Vec::new(),
            },
            missing: MissingPolicy::Error,
            force: false,
        }
    }

    const SESSIONS: &str = "session_id,c_ip,s_port,first,rtt_ms,bytes,label_bitrate,ctx_limit_bps,app,zero,stall\n\
        1,10.0.0.1,443,1700000000,20,1000,300,750000,yt,0,0\n\
        2,10.0.0.2,443,1700000001,80,3000,750,750000,yt,0,1\n\
        3,10.0.0.3,443,1700000002,30,1500,300,750000,yt,0,0\n";

    #[test]
    fn default_features_skip_ids_labels_context_text_and_constants() {
        let d = Dataset::from_frame(&frame(SESSIONS), &spec("stall:stall>0", None)).unwrap();
        assert_eq!(d.feature_names, ["rtt_ms", "bytes"]);
        let reasons: Vec<(&str, &str)> = d
            .report
            .excluded
            .iter()
            .map(|e| (e.column.as_str(), e.reason.split(' ').next().unwrap()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("session_id", "identifier;"),
                ("c_ip", "address;"),
                ("s_port", "port"),
                ("first", "absolute"),
                ("label_bitrate", "label"),
                ("ctx_limit_bps", "context"),
                ("app", "text"),
                ("zero", "constant"),
                ("stall", "the"),
            ]
        );
        assert_eq!(d.x.row(1).to_vec(), [80.0, 3000.0]);
        assert_eq!(d.y, [0, 1, 0]);
    }

    #[test]
    fn asked_for_context_columns_are_used() {
        let s = spec("stall:stall>0", Some(&["ctx_*", "rtt_ms"]));
        let d = Dataset::from_frame(&frame(SESSIONS), &s).unwrap();
        assert_eq!(d.feature_names, ["rtt_ms", "ctx_limit_bps"]);
    }

    #[test]
    fn the_label_as_a_feature_is_refused_unless_forced() {
        let mut s = spec("stall:stall>0", Some(&["rtt_ms", "stall"]));
        let err = Dataset::from_frame(&frame(SESSIONS), &s)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("label leakage: 'stall' is the label column"),
            "{err}"
        );
        assert!(err.contains("--force"), "{err}");
        let other = spec("stall:stall>0", Some(&["label_*"]));
        let err = Dataset::from_frame(&frame(SESSIONS), &other).unwrap_err();
        assert!(
            err.to_string().contains("'label_bitrate' is another label"),
            "{err}"
        );
        s.force = true;
        let d = Dataset::from_frame(&frame(SESSIONS), &s).unwrap();
        assert_eq!(d.feature_names, ["rtt_ms", "stall"]);
    }

    #[test]
    fn unknown_and_text_features_are_named() {
        let err = Dataset::from_frame(&frame(SESSIONS), &spec("stall", Some(&["rtt"])))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no column 'rtt'") && err.contains("rtt_ms"),
            "{err}"
        );
        let err = Dataset::from_frame(&frame(SESSIONS), &spec("stall", Some(&["app"])))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2, column 'app': 'yt'"), "{err}");
    }

    #[test]
    fn a_bad_cell_in_a_numeric_column_is_an_error_with_its_place() {
        let text = "a,b,y\n1,2,0\n3,x4,1\n5,6,0\n7,8,1\n";
        let err = Dataset::from_frame(&frame(text), &spec("y", None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.csv line 3, column 'b': 'x4' is not a finite number"),
            "{err}"
        );
        assert!(err.contains("--exclude 'b'"), "{err}");
    }

    #[test]
    fn missing_values_follow_the_policy() {
        let text = "a,b,y\n1,,0\n2,5,1\nNA,6,\n3,7,1\n4,8,0\n";
        let err = Dataset::from_frame(&frame(text), &spec("y", None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column 'y' has 1 missing cell(s), the first at t.csv line 4"),
            "{err}"
        );
        assert!(err.contains("column 'b' has 1 missing cell(s), the first at t.csv line 2"));
        let mut s = spec("y", None);
        s.missing = MissingPolicy::Drop;
        let d = Dataset::from_frame(&frame(text), &s).unwrap();
        assert_eq!((d.nrows(), d.report.dropped_missing_label), (3, 1));
        assert_eq!(d.report.dropped_missing_features, 1);
        s.missing = MissingPolicy::Median;
        let d = Dataset::from_frame(&frame(text), &s).unwrap();
        assert_eq!((d.nrows(), d.report.imputed_cells), (4, 1));
        assert!(d.x[[0, 1]].is_nan());
    }

    #[test]
    fn one_class_is_refused() {
        let err = Dataset::from_frame(&frame("a,y\n1,1\n2,1\n"), &spec("y", None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("only one class") && err.contains("1: 2 rows"),
            "{err}"
        );
    }

    #[test]
    fn fingerprints_follow_the_data_not_the_file_name() {
        let s = spec("y", None);
        let text = "a,y\n1,0\n2,1\n";
        let a = Dataset::from_frame(&frame(text), &s).unwrap();
        let b = Dataset::from_frame(
            &Frame::read_csv(text.as_bytes(), "other", None).unwrap(),
            &s,
        )
        .unwrap();
        let c = Dataset::from_frame(&frame("a,y\n1,0\n3,1\n"), &s).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[test]
    fn tstat_logs_are_read_with_their_column_names() {
        // tstat's log_tcp_complete: space separated, `#` before the first name, `:N` suffixes.
        let log = "#c_ip:1 c_port:2 c_pkts_all:3 c_rst_cnt:4 first:29 last:30 durat:31 stall\n\
                   10.0.0.1 51000 120 0 1700000000000 1700000060000 60000 0\n\
                   10.0.0.2 51001 80 1 1700000001000 1700000031000 30000 1\n\
                   10.0.0.3 51002 90 0 1700000002000 1700000052000 50000 0\n";
        let f = frame(log);
        let d = Dataset::from_frame(&f, &spec("stall", None)).unwrap();
        assert_eq!(d.feature_names, ["c_pkts_all:3", "c_rst_cnt:4", "durat:31"]);
        let picked = spec("stall", Some(&["c_pkts_all", "durat"]));
        let d = Dataset::from_frame(&f, &picked).unwrap();
        assert_eq!(d.feature_names, ["c_pkts_all:3", "durat:31"]);
    }

    #[test]
    fn nfstream_identifiers_are_recognised() {
        let names = [
            ("id", true),
            ("expiration_id", true),
            ("src_ip", true),
            ("src_mac", true),
            ("src_oui", true),
            ("dst_port", true),
            ("vlan_id", true),
            ("bidirectional_first_seen_ms", true),
            ("ip_version", false),
            ("bidirectional_duration_ms", false),
            ("src2dst_packets", false),
            ("bidirectional_mean_piat_ms", false),
        ];
        for (name, excluded) in names {
            assert_eq!(id_like(name).is_some(), excluded, "{name}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("c_*", "c_pkts_all"));
        assert!(glob("*_ms", "rtt_ms"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("c_*", "s_pkts"));
        assert!(glob("*a*b", "xaxxb"));
    }
}
