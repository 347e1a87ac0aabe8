//! Dataset export: one row per stored session of a campaign, as CSV, JSON Lines or Parquet,
//! streamed in constant memory.
//!
//! Columns are stable and ordered: identity (`session_id`, `campaign_id`, `seq`), context
//! (`ctx_…`: the shaping profile and workload — known to the experimenter, not to a classifier
//! in the field), features (traffic only), labels (`label_…`, from the application). A
//! campaign's column set (and which columns hold text) is recorded as its sessions are
//! stored, so the header is known before the first row is read.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow_array::builder::{Float64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use futures::TryStreamExt;
use parquet::arrow::ArrowWriter;
use serde_json::value::RawValue;

use crate::db::Db;
use crate::error::{Error, Result};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row; empty cells for missing values.
    Csv,
    /// One JSON object per line; `null` for missing values.
    Jsonl,
    /// Apache Parquet, Snappy-compressed; numbers as float64, text as UTF-8.
    Parquet,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        match s {
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            "parquet" => Ok(Format::Parquet),
            _ => Err(Error::invalid("format", s, "csv, jsonl or parquet")),
        }
    }
}

impl Format {
    /// The MIME type of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Jsonl => "application/x-ndjson",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// The file extension of the format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

/// The ordered columns of a campaign's dataset and which of them hold text.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    /// Column names in export order.
    pub names: Vec<String>,
    /// Names of columns holding text rather than numbers.
    pub text: BTreeSet<String>,
}

const IDENTITY: [&str; 3] = ["session_id", "campaign_id", "seq"];

fn group(name: &str) -> u8 {
    if IDENTITY.contains(&name) {
        0
    } else if name.starts_with("ctx_") {
        1
    } else if name.starts_with("label_") {
        3
    } else {
        2
    }
}

pub(crate) const ROWS_SQL: &str = "SELECT f.features FROM session_features f JOIN sessions s ON s.id = f.session_id \
                        WHERE s.campaign_id = $1 AND s.status = 'done' ORDER BY s.seq";

/// The column set of campaign `campaign_id`, as recorded when its sessions were stored.
pub async fn columns(db: &Db, campaign_id: i64) -> Result<Columns> {
    crate::campaign::get(db, campaign_id).await?;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, is_text FROM campaign_columns WHERE campaign_id = $1")
            .bind(campaign_id)
            .fetch_all(db.pool())
            .await?;
    let text = rows
        .iter()
        .filter(|r| r.1 != 0)
        .map(|r| r.0.clone())
        .collect();
    let mut names: Vec<String> = rows.into_iter().map(|r| r.0).collect();
    names.sort_by(|a, b| {
        group(a).cmp(&group(b)).then_with(|| {
            let pos = |n: &str| IDENTITY.iter().position(|i| *i == n).unwrap_or(usize::MAX);
            pos(a).cmp(&pos(b)).then(a.cmp(b))
        })
    });
    Ok(Columns { names, text })
}

/// Turns rows into bytes of one format, a chunk at a time.
pub struct Encoder {
    columns: Columns,
    slots: Slots,
    kind: EncoderKind,
    rows: usize,
}

enum EncoderKind {
    Csv(csv::Writer<SharedBuf>, SharedBuf),
    Jsonl,
    Parquet {
        writer: ArrowWriter<SharedBuf>,
        buf: SharedBuf,
        schema: Arc<Schema>,
        builders: Vec<Builder>,
        pending: usize,
    },
}

/// One Parquet column being filled.
enum Builder {
    Text(StringBuilder),
    Number(Float64Builder),
}

/// A stored feature row, borrowed from its JSON text: one raw JSON value per export column
/// (`None` where the row lacks the column). Values stay raw JSON until a format needs them,
/// which keeps exporting cheap.
pub type RawRow<'a> = Vec<Option<&'a RawValue>>;

/// The export columns sorted by name, each with its position in the export: a stored row's
/// keys (sorted, as feature rows are stored) are matched to columns by walking this list
/// along with them, without hashing.
struct Slots(Vec<(String, usize)>);

impl Slots {
    fn new(columns: &Columns) -> Slots {
        let mut sorted: Vec<(String, usize)> = columns
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        sorted.sort();
        Slots(sorted)
    }

    /// Parses a stored feature row into its export columns; keys that are no column are
    /// left out.
    fn parse<'a>(&self, json: &'a str) -> Result<RawRow<'a>> {
        use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

        struct Row<'s>(&'s [(String, usize)]);
        impl<'de> DeserializeSeed<'de> for Row<'_> {
            type Value = RawRow<'de>;
            fn deserialize<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> std::result::Result<RawRow<'de>, D::Error> {
                d.deserialize_map(self)
            }
        }
        impl<'de> Visitor<'de> for Row<'_> {
            type Value = RawRow<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a feature row (a JSON object)")
            }
            fn visit_map<M: MapAccess<'de>>(
                self,
                mut map: M,
            ) -> std::result::Result<RawRow<'de>, M::Error> {
                let sorted = self.0;
                let mut row = vec![None; sorted.len()];
                let mut next = 0;
                while let Some(key) = map.next_key::<&'de str>()? {
                    let value = map.next_value::<&'de RawValue>()?;
                    let found = match sorted.get(next) {
                        Some((name, _)) if name == key => Some(next),
                        _ => sorted.binary_search_by(|(n, _)| n.as_str().cmp(key)).ok(),
                    };
                    if let Some(i) = found {
                        row[sorted[i].1] = Some(value);
                        next = i + 1;
                    }
                }
                Ok(row)
            }
        }
        let mut de = serde_json::Deserializer::from_str(json);
        let row = Row(&self.0).deserialize(&mut de)?;
        de.end()?;
        Ok(row)
    }
}

/// The text of a raw JSON value for a CSV cell: strings unescaped, `null` empty.
fn cell_text(raw: &RawValue) -> Result<std::borrow::Cow<'_, str>> {
    let text = raw.get();
    Ok(match text.as_bytes().first() {
        Some(b'"') => std::borrow::Cow::Owned(serde_json::from_str::<String>(text)?),
        _ if text == "null" => std::borrow::Cow::Borrowed(""),
        _ => std::borrow::Cow::Borrowed(text),
    })
}

/// A `Write` whose bytes can be taken out while the writer still holds it.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Rows per Parquet row group: bounds the memory an export holds.
const ROW_GROUP: usize = 4096;

impl Encoder {
    /// An encoder for `columns` in `format`.
    pub fn new(format: Format, columns: Columns) -> Result<Encoder> {
        let kind = match format {
            Format::Csv => {
                let buf = SharedBuf::default();
                EncoderKind::Csv(csv::Writer::from_writer(buf.clone()), buf)
            }
            Format::Jsonl => EncoderKind::Jsonl,
            Format::Parquet => {
                let fields: Vec<Field> = columns
                    .names
                    .iter()
                    .map(|n| {
                        let ty = if columns.text.contains(n) {
                            DataType::Utf8
                        } else {
                            DataType::Float64
                        };
                        Field::new(n, ty, true)
                    })
                    .collect();
                let schema = Arc::new(Schema::new(fields));
                let buf = SharedBuf::default();
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .build();
                let writer = ArrowWriter::try_new(buf.clone(), schema.clone(), Some(props))
                    .map_err(|e| Error::Io(std::io::Error::other(e)))?;
                let builders = schema
                    .fields()
                    .iter()
                    .map(|f| match f.data_type() {
                        DataType::Utf8 => Builder::Text(StringBuilder::new()),
                        _ => Builder::Number(Float64Builder::new()),
                    })
                    .collect();
                EncoderKind::Parquet {
                    writer,
                    buf,
                    schema,
                    builders,
                    pending: 0,
                }
            }
        };
        Ok(Encoder {
            slots: Slots::new(&columns),
            columns,
            kind,
            rows: 0,
        })
    }

    /// Rows encoded so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The bytes that start the output (the CSV header).
    pub fn header(&mut self) -> Result<Vec<u8>> {
        match &mut self.kind {
            EncoderKind::Csv(writer, buf) => {
                writer
                    .write_record(&self.columns.names)
                    .map_err(csv_error)?;
                writer.flush()?;
                Ok(buf.take())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Encodes one stored feature row (its JSON text); returns the bytes ready to be written
    /// (possibly none yet).
    pub fn push(&mut self, json: &str) -> Result<Vec<u8>> {
        let row = self.slots.parse(json)?;
        self.rows += 1;
        let names = &self.columns.names;
        match &mut self.kind {
            EncoderKind::Csv(writer, buf) => {
                for cell in &row {
                    match cell {
                        None => writer.write_field(b"").map_err(csv_error)?,
                        Some(raw) => writer
                            .write_field(cell_text(raw)?.as_bytes())
                            .map_err(csv_error)?,
                    }
                }
                writer.write_record(None::<&[u8]>).map_err(csv_error)?;
                if self.rows.is_multiple_of(256) {
                    writer.flush()?;
                    return Ok(buf.take());
                }
                Ok(Vec::new())
            }
            EncoderKind::Jsonl => {
                let mut line = Vec::with_capacity(2048);
                line.push(b'{');
                for (i, (name, cell)) in names.iter().zip(&row).enumerate() {
                    if i > 0 {
                        line.push(b',');
                    }
                    serde_json::to_writer(&mut line, name)?;
                    line.push(b':');
                    line.extend_from_slice(cell.map_or("null", |r| r.get()).as_bytes());
                }
                line.extend_from_slice(b"}\n");
                Ok(line)
            }
            EncoderKind::Parquet {
                builders, pending, ..
            } => {
                for (cell, builder) in row.iter().zip(builders.iter_mut()) {
                    let raw = cell.map(|r| r.get()).filter(|t| *t != "null");
                    match builder {
                        Builder::Text(b) => match raw {
                            None => b.append_null(),
                            Some(t) if t.starts_with('"') => {
                                b.append_value(serde_json::from_str::<String>(t)?)
                            }
                            Some(t) => b.append_value(t),
                        },
                        Builder::Number(b) => {
                            b.append_option(raw.and_then(|t| t.parse::<f64>().ok()))
                        }
                    }
                }
                *pending += 1;
                if *pending >= ROW_GROUP {
                    self.flush_group()
                } else {
                    Ok(Vec::new())
                }
            }
        }
    }

    fn flush_group(&mut self) -> Result<Vec<u8>> {
        let EncoderKind::Parquet {
            writer,
            buf,
            schema,
            builders,
            pending,
        } = &mut self.kind
        else {
            return Ok(Vec::new());
        };
        if *pending == 0 {
            return Ok(buf.take());
        }
        let arrays: Vec<ArrayRef> = builders
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::Text(b) => Arc::new(b.finish()),
                    Builder::Number(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        *pending = 0;
        let batch = RecordBatch::try_new(schema.clone(), arrays)
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        writer
            .write(&batch)
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        writer
            .flush()
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        Ok(buf.take())
    }

    /// Ends the output; returns the last bytes.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        let mut out = self.flush_group()?;
        match self.kind {
            EncoderKind::Parquet { writer, buf, .. } => {
                writer
                    .close()
                    .map_err(|e| Error::Io(std::io::Error::other(e)))?;
                out.extend(buf.take());
            }
            EncoderKind::Csv(mut writer, buf) => {
                writer.flush()?;
                out.extend(buf.take());
            }
            EncoderKind::Jsonl => {}
        }
        Ok(out)
    }
}

fn csv_error(e: csv::Error) -> Error {
    Error::Io(std::io::Error::other(e))
}

/// Streams campaign `campaign_id` in `format`, calling `sink` with each chunk of bytes in
/// order. Memory stays bounded by one Parquet row group whatever the campaign's size.
pub async fn stream<F>(db: &Db, campaign_id: i64, format: Format, mut sink: F) -> Result<usize>
where
    F: AsyncFnMut(Vec<u8>) -> Result<()>,
{
    let columns = columns(db, campaign_id).await?;
    let mut encoder = Encoder::new(format, columns)?;
    sink(encoder.header()?).await?;
    let mut rows = sqlx::query_as::<_, (String,)>(ROWS_SQL)
        .bind(campaign_id)
        .fetch(db.pool());
    let mut chunk = Vec::with_capacity(1 << 16);
    while let Some((json,)) = rows.try_next().await? {
        chunk.extend(encoder.push(&json)?);
        if chunk.len() >= 1 << 16 {
            sink(std::mem::replace(&mut chunk, Vec::with_capacity(1 << 16))).await?;
        }
    }
    let n = encoder.rows();
    chunk.extend(encoder.finish()?);
    sink(chunk).await?;
    Ok(n)
}

/// Writes campaign `campaign_id` in `format` to `path`; returns the number of rows.
pub async fn to_file(
    db: &Db,
    campaign_id: i64,
    format: Format,
    path: &std::path::Path,
) -> Result<usize> {
    crate::campaign::get(db, campaign_id).await?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let n = stream(db, campaign_id, format, async |bytes: Vec<u8>| {
        Ok(file.write_all(&bytes)?)
    })
    .await?;
    file.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_line(json: &str) -> String {
        let columns = Columns {
            names: ["session_id", "ctx_workload", "b_max", "a_sum", "label_x"]
                .map(String::from)
                .to_vec(),
            text: ["ctx_workload".to_string(), "label_x".to_string()].into(),
        };
        let mut encoder = Encoder::new(Format::Csv, columns).unwrap();
        encoder.header().unwrap();
        let mut out = encoder.push(json).unwrap();
        out.extend(encoder.finish().unwrap());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn stored_keys_find_their_columns_in_any_order_with_gaps_and_extras() {
        // Sorted keys, as feature rows are stored.
        assert_eq!(
            csv_line(
                r#"{"a_sum":1.5,"b_max":2,"ctx_workload":"video, \"buffer\"","label_x":null,"session_id":7}"#
            ),
            "7,\"video, \"\"buffer\"\"\",2,1.5,\n"
        );
        // Unsorted, a column missing, a key that is no column, a repeated key (the last wins).
        assert_eq!(
            csv_line(r#"{"session_id":7,"zz":1,"label_x":"low","a_sum":3,"b_max":[1],"a_sum":4}"#),
            "7,,[1],4,low\n"
        );
    }

    #[test]
    fn a_row_that_is_not_an_object_is_an_error() {
        let columns = Columns {
            names: vec!["a".into()],
            text: BTreeSet::new(),
        };
        let mut encoder = Encoder::new(Format::Csv, columns).unwrap();
        assert!(encoder.push("[1]").is_err());
        assert!(encoder.push(r#"{"a":1} x"#).is_err());
    }
}
