//! The one error type of the planner: every refusal names the field, the value and what is
//! accepted.

use qoelab_workload::model::ModelError;

/// Input the planner refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// A field has a value outside what is accepted.
    #[error("{field} = {value} is not accepted: {accepted}")]
    Invalid {
        /// The field, e.g. `analytic 'cam-1' weight`.
        field: String,
        /// The value as given.
        value: String,
        /// What is accepted.
        accepted: String,
    },
    /// A file or line that does not parse.
    #[error("{source_name}: {message}")]
    Syntax {
        /// Which input (a file name, `requests line 3`).
        source_name: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// An analytic model problem (unknown kind, bad model file).
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl PlanError {
    /// A refused value of `field`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl ToString,
        accepted: impl Into<String>,
    ) -> PlanError {
        PlanError::Invalid {
            field: field.into(),
            value: value.to_string(),
            accepted: accepted.into(),
        }
    }

    /// A syntax error in `source_name`.
    pub fn syntax(source_name: impl Into<String>, message: impl ToString) -> PlanError {
        PlanError::Syntax {
            source_name: source_name.into(),
            message: message.to_string(),
        }
    }
}

/// Parses one of a fixed set of lowercase names, refusing others with the list of accepted ones.
pub(crate) fn parse_name<T: Copy>(
    field: &str,
    text: &str,
    names: &[(&str, T)],
) -> Result<T, PlanError> {
    let lower = text.trim().to_ascii_lowercase();
    names
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let accepted: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
            PlanError::invalid(
                field,
                format!("'{text}'"),
                format!("one of {}", accepted.join(", ")),
            )
        })
}

/// Gives a fieldless enum its command-line names: `ALL`, `name()`, `Display`, and a `FromStr`
/// that refuses other names with the list of accepted ones (`field` names the input).
macro_rules! named_enum {
    ($ty:ident, $field:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every value, in the order reports list them.
            pub const ALL: [$ty; [$($name),+].len()] = [$($ty::$variant),+];

            /// The name used on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = crate::PlanError;

            fn from_str(text: &str) -> Result<$ty, crate::PlanError> {
                crate::error::parse_name($field, text, &$ty::ALL.map(|v| (v.name(), v)))
            }
        }
    };
}

pub(crate) use named_enum;
