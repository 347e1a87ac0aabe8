//! Class rules: how a label column becomes classes.
//!
//! - `COLUMN`: the column's distinct values are the classes (`low`, `medium`, `high`; or a few
//!   integers).
//! - `NAME:COLUMN>VALUE` (also `>=`, `<`, `<=`, `==`, `!=`): two classes, `no_NAME` where the
//!   comparison is false and `NAME` where it is true (`stall:label_stall_count>0`).
//! - `COLUMN` with thresholds `t1,t2,…` (ascending): ordered classes `v < t1`, `t1 ≤ v < t2`, …,
//!   `v ≥ tn`.
//!
//! Class names can be given (`--classes`); for the values rule they fix the order and must name
//! every value that occurs.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{ColumnKind, Frame};

/// Most distinct values a numeric label column may have without a rule or thresholds.
pub const MAX_VALUE_CLASSES: usize = 20;

/// A comparison in a binary class rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl CompareOp {
    /// Longest first, so that `>=` is not read as `>`.
    const ALL: [(&'static str, CompareOp); 6] = [
        (">=", CompareOp::Ge),
        ("<=", CompareOp::Le),
        ("==", CompareOp::Eq),
        ("!=", CompareOp::Ne),
        (">", CompareOp::Gt),
        ("<", CompareOp::Lt),
    ];

    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CompareOp::Gt => a > b,
            CompareOp::Ge => a >= b,
            CompareOp::Lt => a < b,
            CompareOp::Le => a <= b,
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (text, _) = CompareOp::ALL
            .iter()
            .find(|(_, op)| op == self)
            .expect("listed");
        f.write_str(text)
    }
}

/// How label values become classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelRule {
    /// The column's distinct values are the classes.
    Values {
        /// The label column.
        column: String,
    },
    /// Two classes: `no_NAME` (comparison false) and `NAME` (true).
    Compare {
        /// The name of the true class.
        name: String,
        /// The label column.
        column: String,
        /// The comparison.
        op: CompareOp,
        /// The number compared with.
        value: f64,
    },
    /// Ordered classes cut at ascending thresholds.
    Thresholds {
        /// The label column.
        column: String,
        /// Strictly ascending cut points.
        cuts: Vec<f64>,
    },
}

/// A class rule with the class names, as given by the user or fixed by training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelSpec {
    /// The rule.
    pub rule: LabelRule,
    /// Class names in class order; `None` = default names.
    pub classes: Option<Vec<String>>,
}

/// Labels of a frame's rows.
#[derive(Debug, Clone)]
pub struct Labels {
    /// Class names in class order.
    pub class_names: Vec<String>,
    /// Each row's class; `None` where the label cell is missing.
    pub classes: Vec<Option<usize>>,
}

impl LabelSpec {
    /// Reads `--label`, `--thresholds` and `--classes` as typed on the command line.
    pub fn parse(
        label: &str,
        thresholds: Option<&str>,
        classes: Option<&str>,
    ) -> Result<LabelSpec> {
        let invalid = |value: &str, expected: &str| Error::invalid("--label", value, expected);
        let compare = CompareOp::ALL
            .iter()
            .filter_map(|(text, op)| label.find(text).map(|at| (at, *text, *op)))
            .min_by_key(|(at, text, _)| (*at, usize::MAX - text.len()));
        let rule = match (compare, thresholds) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    label,
                    "use either a rule NAME:COLUMN>VALUE or --thresholds, not both",
                ));
            }
            (Some((at, text, op)), None) => {
                let form =
                    "a binary rule looks like NAME:COLUMN>VALUE, e.g. stall:label_stall_count>0";
                let (name, column) = label[..at]
                    .split_once(':')
                    .ok_or_else(|| invalid(label, form))?;
                let (name, column) = (name.trim(), column.trim());
                let value = label[at + text.len()..].trim();
                let value = value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| invalid(label, form))?;
                if name.is_empty() || column.is_empty() {
                    return Err(invalid(label, form));
                }
                LabelRule::Compare {
                    name: name.to_string(),
                    column: column.to_string(),
                    op,
                    value,
                }
            }
            (None, Some(cuts)) => LabelRule::Thresholds {
                column: label.trim().to_string(),
                cuts: parse_cuts(cuts)?,
            },
            (None, None) => LabelRule::Values {
                column: label.trim().to_string(),
            },
        };
        let classes = classes.map(|c| c.split(',').map(|s| s.trim().to_string()).collect());
        let spec = LabelSpec { rule, classes };
        spec.check_class_names()?;
        Ok(spec)
    }

    /// The label column's name.
    pub fn column(&self) -> &str {
        match &self.rule {
            LabelRule::Values { column }
            | LabelRule::Compare { column, .. }
            | LabelRule::Thresholds { column, .. } => column,
        }
    }

    /// The same rule with the class names fixed (as stored with a trained model).
    pub fn with_classes(&self, class_names: &[String]) -> LabelSpec {
        LabelSpec {
            rule: self.rule.clone(),
            classes: Some(class_names.to_vec()),
        }
    }

    fn check_class_names(&self) -> Result<()> {
        let Some(names) = &self.classes else {
            return Ok(());
        };
        let invalid = |expected: String| Error::invalid("--classes", names.join(","), expected);
        if names.iter().any(String::is_empty) {
            return Err(invalid("class names must not be empty".to_string()));
        }
        if let Some(dup) = names
            .iter()
            .enumerate()
            .find(|(i, n)| names[..*i].contains(n))
        {
            return Err(invalid(format!("'{}' is named twice", dup.1)));
        }
        let wanted = match &self.rule {
            LabelRule::Values { .. } => return Ok(()),
            LabelRule::Compare { .. } => 2,
            LabelRule::Thresholds { cuts, .. } => cuts.len() + 1,
        };
        if names.len() != wanted {
            return Err(invalid(format!(
                "this rule makes {wanted} classes, so give {wanted} names (lowest first)"
            )));
        }
        Ok(())
    }

    fn default_names(&self) -> Vec<String> {
        match &self.rule {
            LabelRule::Values { .. } => Vec::new(),
            LabelRule::Compare { name, .. } => vec![format!("no_{name}"), name.clone()],
            LabelRule::Thresholds { cuts, .. } => {
                let mut names = vec![format!("<{}", cuts[0])];
                for pair in cuts.windows(2) {
                    names.push(format!("[{},{})", pair[0], pair[1]));
                }
                names.push(format!(">={}", cuts[cuts.len() - 1]));
                names
            }
        }
    }

    /// The class of every row of `frame`.
    pub fn assign(&self, frame: &Frame) -> Result<Labels> {
        let index = frame.find(self.column())?;
        let column = &frame.columns()[index];
        if let LabelRule::Values { .. } = self.rule {
            return self.assign_values(frame, index);
        }
        let hint = "; this label rule compares numbers (without a rule, the column's distinct \
                    values are the classes)";
        frame.check_numeric(index, hint)?;
        let class_of = |v: f64| match &self.rule {
            LabelRule::Compare { op, value, .. } => usize::from(op.holds(v, *value)),
            LabelRule::Thresholds { cuts, .. } => cuts.partition_point(|&c| c <= v),
            LabelRule::Values { .. } => unreachable!("handled above"),
        };
        Ok(Labels {
            class_names: self.classes.clone().unwrap_or_else(|| self.default_names()),
            classes: column
                .values()
                .iter()
                .map(|&v| (!v.is_nan()).then(|| class_of(v)))
                .collect(),
        })
    }

    fn assign_values(&self, frame: &Frame, index: usize) -> Result<Labels> {
        let column = &frame.columns()[index];
        let keys: Vec<Option<String>> = (0..frame.nrows())
            .map(|row| match column.text_at(row) {
                Some(text) => Some(text.to_string()),
                None => {
                    let v = column.values()[row];
                    (!v.is_nan()).then(|| format_number(v))
                }
            })
            .collect();
        let class_names = match &self.classes {
            Some(names) => names.clone(),
            None => {
                let mut distinct: Vec<&String> = keys.iter().flatten().collect();
                if column.kind() == ColumnKind::Numeric {
                    distinct.sort_by(|a, b| {
                        let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
                        a.total_cmp(&b)
                    });
                } else {
                    distinct.sort();
                }
                distinct.dedup();
                if column.kind() == ColumnKind::Numeric && distinct.len() > MAX_VALUE_CLASSES {
                    return Err(Error::invalid(
                        "--label",
                        column.name(),
                        format!(
                            "this numeric column has {} distinct values, too many to be classes \
                             (at most {MAX_VALUE_CLASSES}); give a rule NAME:{}>VALUE or \
                             --thresholds t1,t2 to cut it into classes",
                            distinct.len(),
                            column.name()
                        ),
                    ));
                }
                distinct.into_iter().cloned().collect()
            }
        };
        let classes = keys
            .iter()
            .enumerate()
            .map(|(row, key)| {
                key.as_ref()
                    .map(|k| {
                        class_names.iter().position(|c| c == k).ok_or_else(|| {
                            Error::invalid(
                                format!("label at {}", frame.place(row)),
                                k,
                                format!("one of the classes {}", class_names.join(", ")),
                            )
                        })
                    })
                    .transpose()
            })
            .collect::<Result<_>>()?;
        Ok(Labels {
            class_names,
            classes,
        })
    }

    /// A one-line description, e.g. `stall = label_stall_count > 0`.
    pub fn describe(&self) -> String {
        match &self.rule {
            LabelRule::Values { column } => format!("the values of {column}"),
            LabelRule::Compare {
                name,
                column,
                op,
                value,
            } => format!("{name} = {column} {op} {value}"),
            LabelRule::Thresholds { column, cuts } => format!(
                "{column} cut at {}",
                cuts.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

fn parse_cuts(text: &str) -> Result<Vec<f64>> {
    let invalid = || {
        let expected = "strictly ascending numbers separated by commas, e.g. 0.5,1.5";
        Error::invalid("--thresholds", text, expected)
    };
    let cuts: Vec<f64> = text
        .split(',')
        .map(|s| s.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(invalid)?;
    if cuts.is_empty() || cuts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid());
    }
    Ok(cuts)
}

/// A number as a class name: `1` rather than `1.0`.
fn format_number(v: f64) -> String {
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Frame::read_csv(text.as_bytes(), "t.csv", None).unwrap()
    }

    #[test]
    fn binary_rules_split_on_the_comparison() {
        let spec = LabelSpec::parse("stall:label_stall_count>0", None, None).unwrap();
        let labels = spec
            .assign(&frame("label_stall_count\n0\n2\n\n1\n"))
            .unwrap();
        assert_eq!(labels.class_names, ["no_stall", "stall"]);
        assert_eq!(labels.classes, [Some(0), Some(1), Some(1)]);
        let spec = LabelSpec::parse("ok:rtt_ms<=100", None, Some("bad,good")).unwrap();
        let labels = spec.assign(&frame("rtt_ms\n100\n101\nNA\n")).unwrap();
        assert_eq!(labels.class_names, ["bad", "good"]);
        assert_eq!(labels.classes, [Some(1), Some(0), None]);
    }

    #[test]
    fn thresholds_make_ordered_classes() {
        let spec = LabelSpec::parse("qoe", Some("0.5,1.5"), None).unwrap();
        let labels = spec.assign(&frame("qoe\n0.2\n0.5\n1.4\n1.5\n9\n")).unwrap();
        assert_eq!(labels.class_names, ["<0.5", "[0.5,1.5)", ">=1.5"]);
        assert_eq!(
            labels.classes,
            [Some(0), Some(1), Some(1), Some(2), Some(2)]
        );
        let err = LabelSpec::parse("qoe", Some("1.5,0.5"), None).unwrap_err();
        assert!(err.to_string().contains("strictly ascending"), "{err}");
        let err = LabelSpec::parse("qoe", Some("0.5,1.5"), Some("low,high")).unwrap_err();
        assert!(err.to_string().contains("give 3 names"), "{err}");
    }

    #[test]
    fn values_are_classes_in_sorted_or_given_order() {
        let f = frame("q\nlow\nhigh\nmedium\nlow\n");
        let sorted = LabelSpec::parse("q", None, None)
            .unwrap()
            .assign(&f)
            .unwrap();
        assert_eq!(sorted.class_names, ["high", "low", "medium"]);
        let given = LabelSpec::parse("q", None, Some("low,medium,high")).unwrap();
        let labels = given.assign(&f).unwrap();
        assert_eq!(labels.classes, [Some(0), Some(2), Some(1), Some(0)]);
        let err = LabelSpec::parse("q", None, Some("low,high"))
            .unwrap()
            .assign(&f)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.csv line 4") && err.contains("'medium'"),
            "{err}"
        );
        let numbers = LabelSpec::parse("q", None, None).unwrap();
        let labels = numbers.assign(&frame("q\n10\n2\n2.0\n")).unwrap();
        assert_eq!(labels.class_names, ["2", "10"]);
    }

    #[test]
    fn a_continuous_label_needs_a_rule() {
        let text: String = std::iter::once("q".to_string())
            .chain((0..30).map(|i| format!("{i}.5")))
            .collect::<Vec<_>>()
            .join("\n");
        let err = LabelSpec::parse("q", None, None)
            .unwrap()
            .assign(&frame(&text))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("30 distinct values") && err.contains("--thresholds"),
            "{err}"
        );
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in ["stall:>0", "label_stall_count>0", "stall:x>abc", ":x>1"] {
            let err = LabelSpec::parse(bad, None, None).unwrap_err().to_string();
            assert!(err.contains("NAME:COLUMN>VALUE"), "{bad}: {err}");
        }
        let err = LabelSpec::parse("s:x>=1", Some("1"), None).unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
        let ge = LabelSpec::parse("s:x>=1", None, None).unwrap();
        assert_eq!(ge.describe(), "s = x >= 1");
    }

    #[test]
    fn rules_on_text_name_the_cell() {
        let spec = LabelSpec::parse("stall:n>0", None, None).unwrap();
        let err = spec.assign(&frame("n\n1\nyes\n")).unwrap_err().to_string();
        assert!(err.contains("t.csv line 3, column 'n': 'yes'"), "{err}");
    }
}
