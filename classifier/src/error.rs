//! The one error type of the crate. Every message names the thing that was wrong (file, line,
//! column, value, flag) and what would be accepted instead.

/// What went wrong while reading data, training, storing or predicting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The CSV reader failed (bad quoting, invalid UTF-8).
    #[error("{at}: {message}")]
    Csv {
        /// Where: file and line.
        at: String,
        /// The reader's description.
        message: String,
    },
    /// No header, or a header and no data rows.
    #[error("{source_name} is empty: {what}")]
    Empty {
        /// The file or row source.
        source_name: String,
        /// What is missing.
        what: String,
    },
    /// A row with more or fewer cells than the header.
    #[error(
        "{at}: {fields} fields, but the header has {expected}; every row needs one value per \
         column (leave a cell empty for a missing value)"
    )]
    Ragged {
        /// Where: file and line (or row).
        at: String,
        /// Cells found in this row.
        fields: usize,
        /// Cells in the header.
        expected: usize,
    },
    /// Two columns with the same name.
    #[error("{source_name}: column '{column}' appears twice in the header; names must be unique")]
    DuplicateColumn {
        /// The file or row source.
        source_name: String,
        /// The repeated name.
        column: String,
    },
    /// A column used as a number holds a cell that is not a finite number.
    #[error(
        "{at}, column '{column}': '{value}' is not a finite number \
         ({count} such cell(s) in this column); expected a decimal like 12 or 0.5, or an empty \
         cell / NA for a missing value{hint}"
    )]
    NotNumeric {
        /// Where the first such cell is: file and line (or row).
        at: String,
        /// The column.
        column: String,
        /// The cell's text.
        value: String,
        /// How many cells of the column are not numbers.
        count: usize,
        /// What the user can do, starting with "; " (or empty).
        hint: String,
    },
    /// A column named on the command line is not in the data.
    #[error("{source_name} has no column '{column}'; its columns are: {available}")]
    UnknownColumn {
        /// The file or row source.
        source_name: String,
        /// The requested name.
        column: String,
        /// The column names present (possibly shortened).
        available: String,
    },
    /// A flag or parameter value outside what is accepted.
    #[error("invalid {name} '{value}': {expected}")]
    InvalidParameter {
        /// The flag or parameter.
        name: String,
        /// The value given.
        value: String,
        /// The accepted form.
        expected: String,
    },
    /// The label column (or another label column) is also a feature.
    #[error(
        "label leakage: {what}; a model that sees its label as input learns nothing useful. Remove \
         it from --features, or pass --force if this is really meant"
    )]
    Leakage {
        /// Which column leaks and how.
        what: String,
    },
    /// Missing values in used columns while the policy is `error`.
    #[error(
        "missing values in {source_name}: {summary}. Choose a policy: --missing drop (drop those \
         rows) or --missing median (fill features with the training data's median; rows without \
         a label are dropped)"
    )]
    MissingValues {
        /// The file or row source.
        source_name: String,
        /// Per column: count and first line.
        summary: String,
    },
    /// After labeling, fewer than two classes remain.
    #[error(
        "only one class remains in {source_name} ({detail}); a classifier needs rows of at least \
         two classes: check the label column and the class rule"
    )]
    OneClass {
        /// The file or row source.
        source_name: String,
        /// The class and its row count.
        detail: String,
    },
    /// No usable feature columns.
    #[error("no feature columns left in {source_name}: {detail}")]
    NoFeatures {
        /// The file or row source.
        source_name: String,
        /// Why each candidate was excluded.
        detail: String,
    },
    /// A linfa model failed to fit.
    #[error("fitting {model} failed: {message}")]
    Fit {
        /// The model kind.
        model: String,
        /// linfa's message.
        message: String,
    },
    /// A stored model could not be read.
    #[error("cannot read the model: {0}")]
    ModelFormat(String),
    /// Prediction input lacks features the model needs.
    #[error(
        "the input lacks {} feature(s) the model was trained on: {}; the model needs all of: {}",
        missing.len(), missing.join(", "), needed.join(", ")
    )]
    MissingFeatures {
        /// The absent features.
        missing: Vec<String>,
        /// All features of the model, in order.
        needed: Vec<String>,
    },
    /// A feature value is missing or not finite and the model has no imputation.
    #[error(
        "{place}feature '{feature}' has no finite value ({value}); this model was trained with \
         --missing {policy} and cannot fill it in (train with --missing median to accept gaps)"
    )]
    MissingFeatureValue {
        /// "line N: " or empty.
        place: String,
        /// The feature.
        feature: String,
        /// The offending value as text.
        value: String,
        /// The model's missing-value policy.
        policy: String,
    },
}

impl Error {
    /// [`Error::InvalidParameter`]: `name` was given `value`; `expected` says what is accepted.
    pub fn invalid(
        name: impl Into<String>,
        value: impl ToString,
        expected: impl Into<String>,
    ) -> Error {
        Error::InvalidParameter {
            name: name.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
