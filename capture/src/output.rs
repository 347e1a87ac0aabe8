//! Writing records as CSV (a header line, then one line per record) or JSONL (one JSON object
//! per line, same names as the CSV header).

use std::io::{self, Write};
use std::marker::PhantomData;
use std::str::FromStr;

use serde::Serialize;

use crate::record::Row;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header line; empty cells for undefined values.
    Csv,
    /// One JSON object per line; `null` for undefined values.
    Jsonl,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            _ => Err(format!("'{s}' is not an output format: use csv or jsonl")),
        }
    }
}

impl Format {
    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

/// Writes records of type `R` to `W`.
#[derive(Debug)]
pub struct RecordWriter<W: Write, R> {
    out: W,
    format: Format,
    line: String,
    written: u64,
    _records: PhantomData<R>,
}

impl<W: Write, R: Row + Serialize> RecordWriter<W, R> {
    /// A writer; the CSV header is written at once.
    pub fn new(mut out: W, format: Format) -> io::Result<Self> {
        if format == Format::Csv {
            writeln!(out, "{}", R::header().join(","))?;
        }
        Ok(RecordWriter {
            out,
            format,
            line: String::new(),
            written: 0,
            _records: PhantomData,
        })
    }

    /// Writes `records`.
    pub fn write(&mut self, records: &[R]) -> io::Result<()> {
        for record in records {
            self.line.clear();
            match self.format {
                Format::Csv => record.write_csv(&mut self.line),
                Format::Jsonl => {
                    self.line = serde_json::to_string(record).map_err(io::Error::other)?;
                }
            }
            self.line.push('\n');
            self.out.write_all(self.line.as_bytes())?;
        }
        self.written += records.len() as u64;
        Ok(())
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{FlowRecord, SeriesRow};

    #[test]
    fn csv_has_a_header_and_a_line_per_record() {
        let mut w = RecordWriter::<Vec<u8>, SeriesRow>::new(Vec::new(), Format::Csv).unwrap();
        w.write(&[SeriesRow::default(), SeriesRow::default()])
            .unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("flow_id,bin_start_unix_s,"));
        assert_eq!(lines[1], ",0,0,0,0,0,0,0,0");
    }

    #[test]
    fn jsonl_is_one_object_per_line() {
        let mut w = RecordWriter::<Vec<u8>, FlowRecord>::new(Vec::new(), Format::Jsonl).unwrap();
        w.write(&[FlowRecord::default()]).unwrap();
        assert_eq!(w.written(), 1);
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert!(v.get("c2s_pkts").is_some());
    }

    #[test]
    fn unknown_formats_name_the_accepted_ones() {
        assert_eq!(
            "xml".parse::<Format>().unwrap_err(),
            "'xml' is not an output format: use csv or jsonl"
        );
    }
}
