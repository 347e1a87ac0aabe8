//! [`Frame`]: a table of named columns as read, before any label or feature is chosen.
//!
//! A frame comes from a CSV file (ours, or a tstat/nfstream-style export from elsewhere; comma,
//! tab, semicolon or space separated, detected from the header) or from rows handed over by a
//! program (the collector's stored sessions, a live capture). Cells are numbers, missing, or text;
//! nothing is coerced: a text cell in a numeric column stays visible so that the dataset step can
//! name it in an error.

use std::cell::RefCell;
use std::io::{BufRead, Read};
use std::path::Path;
use std::rc::Rc;

use crate::error::{Error, Result};

/// Cell texts read as a missing value (compared case-insensitively, after trimming).
pub const MISSING_TOKENS: [&str; 7] = ["", "na", "n/a", "nan", "null", "none", "?"];

/// One cell of a row handed to [`Frame::push_row`].
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value.
    Missing,
    /// A finite number.
    Number(f64),
    /// Anything else (a name, an address, a malformed number).
    Text(String),
}

impl Cell {
    /// Reads a cell's text: a missing token, a finite number, or text.
    pub fn parse(raw: &str) -> Cell {
        let s = raw.trim();
        if MISSING_TOKENS.iter().any(|t| s.eq_ignore_ascii_case(t)) {
            return Cell::Missing;
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Cell::Number(v),
            _ => Cell::Text(s.to_string()),
        }
    }
}

impl From<f64> for Cell {
    /// A finite number, or [`Cell::Missing`] for NaN and infinities.
    fn from(v: f64) -> Cell {
        if v.is_finite() {
            Cell::Number(v)
        } else {
            Cell::Missing
        }
    }
}

impl From<Option<f64>> for Cell {
    fn from(v: Option<f64>) -> Cell {
        v.map_or(Cell::Missing, Cell::from)
    }
}

impl From<&str> for Cell {
    /// Parsed as in a CSV file.
    fn from(s: &str) -> Cell {
        Cell::parse(s)
    }
}

/// One named column: numbers (NaN where missing or text) plus the text cells by row.
#[derive(Debug, Clone)]
pub struct Column {
    name: String,
    values: Vec<f64>,
    texts: Vec<(usize, String)>,
    missing: usize,
}

/// What a column holds, judged from all its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Only numbers (and missing cells).
    Numeric,
    /// Mostly text: names, addresses, class labels.
    Text,
    /// Mostly numbers with some text cells: a numeric column with malformed cells.
    Mixed,
}

impl Column {
    fn new(name: String) -> Column {
        Column {
            name,
            values: Vec::new(),
            texts: Vec::new(),
            missing: 0,
        }
    }

    fn push(&mut self, cell: Cell) {
        let row = self.values.len();
        match cell {
            Cell::Number(v) => self.values.push(v),
            Cell::Missing => {
                self.missing += 1;
                self.values.push(f64::NAN);
            }
            Cell::Text(t) => {
                self.texts.push((row, t));
                self.values.push(f64::NAN);
            }
        }
    }

    /// The header name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The numbers by row; NaN where the cell is missing or text.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The text cells as (row, text), in row order.
    pub fn texts(&self) -> &[(usize, String)] {
        &self.texts
    }

    /// The text of a row's cell, if it is text.
    pub fn text_at(&self, row: usize) -> Option<&str> {
        self.texts
            .binary_search_by_key(&row, |(r, _)| *r)
            .ok()
            .map(|i| self.texts[i].1.as_str())
    }

    /// How many cells are missing.
    pub fn missing_count(&self) -> usize {
        self.missing
    }

    /// Numeric, text, or numeric with malformed cells.
    pub fn kind(&self) -> ColumnKind {
        let numbers = self.values.len() - self.missing - self.texts.len();
        if self.texts.is_empty() {
            ColumnKind::Numeric
        } else if numbers > self.texts.len() {
            ColumnKind::Mixed
        } else {
            ColumnKind::Text
        }
    }
}

/// A table of named columns with the origin of every row, for error messages.
#[derive(Debug, Clone)]
pub struct Frame {
    source: String,
    columns: Vec<Column>,
    /// 1-based line in the file for CSV rows; `None` for rows handed over by a program.
    lines: Option<Vec<u64>>,
}

impl Frame {
    /// An empty frame with these column names, to be filled with [`Frame::push_row`].
    ///
    /// `source` names where the rows come from in messages (e.g. `campaign 3`).
    pub fn new(source: &str, names: Vec<String>) -> Result<Frame> {
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(Error::DuplicateColumn {
                    source_name: source.to_string(),
                    column: name.clone(),
                });
            }
        }
        Ok(Frame {
            source: source.to_string(),
            columns: names.into_iter().map(Column::new).collect(),
            lines: None,
        })
    }

    /// Appends a row; it must have exactly one cell per column.
    pub fn push_row(&mut self, cells: Vec<Cell>) -> Result<()> {
        if cells.len() != self.columns.len() {
            return Err(Error::Ragged {
                at: self.place(self.nrows()),
                fields: cells.len(),
                expected: self.columns.len(),
            });
        }
        for (column, cell) in self.columns.iter_mut().zip(cells) {
            column.push(cell);
        }
        Ok(())
    }

    /// A frame from rows of named numeric columns (`None` = missing), e.g. the collector's
    /// stored sessions.
    pub fn from_numeric_rows(
        source: &str,
        names: Vec<String>,
        rows: impl IntoIterator<Item = Vec<Option<f64>>>,
    ) -> Result<Frame> {
        let mut frame = Frame::new(source, names)?;
        for row in rows {
            frame.push_row(row.into_iter().map(Cell::from).collect())?;
        }
        Ok(frame)
    }

    /// Reads a CSV file; the delimiter is detected from the header unless given.
    pub fn read_csv_path(path: &Path, delimiter: Option<u8>) -> Result<Frame> {
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        Frame::read_csv(
            std::io::BufReader::new(file),
            &path.display().to_string(),
            delimiter,
        )
    }

    /// Reads CSV text with a header row. The delimiter (`,` tab `;` or space) is detected from
    /// the header unless given. A leading `#` on the header (tstat logs) is dropped.
    pub fn read_csv(
        mut reader: impl BufRead,
        source: &str,
        delimiter: Option<u8>,
    ) -> Result<Frame> {
        let mut header = String::new();
        reader.read_line(&mut header).map_err(|e| Error::Io {
            path: source.to_string(),
            source: e,
        })?;
        if let Some(rest) = header.strip_prefix('\u{feff}') {
            header = rest.to_string(); // a byte-order mark, as spreadsheet programs write
        }
        if header.trim().is_empty() {
            return Err(Error::Empty {
                source_name: source.to_string(),
                what: "no header line (expected column names on the first line)".to_string(),
            });
        }
        let delimiter = delimiter.unwrap_or_else(|| detect_delimiter(&header));
        // The csv crate's line numbers skip blank lines; count newlines ourselves.
        let newlines = Rc::new(RefCell::new(Vec::new()));
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .trim(csv::Trim::All)
            .has_headers(true)
            .from_reader(NewlineIndex {
                inner: std::io::Cursor::new(header.into_bytes()).chain(reader),
                offset: 0,
                newlines: Rc::clone(&newlines),
            });
        let line_of = |byte: u64| newlines.borrow().partition_point(|&nl| nl < byte) as u64 + 1;
        let csv_error = |e: csv::Error| Error::Csv {
            at: match e.position() {
                Some(p) => format!("{source} line {}", line_of(p.byte())),
                None => source.to_string(),
            },
            message: e.to_string(),
        };
        let names: Vec<String> = csv
            .headers()
            .map_err(csv_error)?
            .iter()
            .enumerate()
            .map(|(i, h)| if i == 0 { strip_tstat_hash(h) } else { h }.to_string())
            .collect();
        let mut frame = Frame::new(source, names)?;
        let mut lines = Vec::new();
        let mut record = csv::StringRecord::new();
        while csv.read_record(&mut record).map_err(csv_error)? {
            // The record's own position may point at blank lines before it; its end does not.
            let line = line_of(csv.position().byte().saturating_sub(1));
            if record.len() == 1 && record[0].is_empty() {
                continue; // a blank line
            }
            lines.push(line);
            if record.len() != frame.columns.len() {
                return Err(Error::Ragged {
                    at: format!("{source} line {line}"),
                    fields: record.len(),
                    expected: frame.columns.len(),
                });
            }
            for (column, raw) in frame.columns.iter_mut().zip(record.iter()) {
                column.push(Cell::parse(raw));
            }
        }
        if lines.is_empty() {
            return Err(Error::Empty {
                source_name: source.to_string(),
                what: "a header but no data rows".to_string(),
            });
        }
        frame.lines = Some(lines);
        Ok(frame)
    }

    /// Where the rows come from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Number of data rows.
    pub fn nrows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.values.len())
    }

    /// The columns in header order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The index of a column by name. An exact match wins; otherwise a name without a tstat
    /// `:N` position suffix matches (`c_pkts_all` finds `c_pkts_all:3`) if exactly one does.
    pub fn find(&self, name: &str) -> Result<usize> {
        if let Some(i) = self.columns.iter().position(|c| c.name == name) {
            return Ok(i);
        }
        let unsuffixed: Vec<usize> = (0..self.columns.len())
            .filter(|&i| base_name(&self.columns[i].name) == name)
            .collect();
        match unsuffixed[..] {
            [i] => Ok(i),
            _ => Err(Error::UnknownColumn {
                source_name: self.source.clone(),
                column: name.to_string(),
                available: self.column_list(),
            }),
        }
    }

    /// Fails with [`Error::NotNumeric`] naming the column's first text cell, if it has one;
    /// `hint` (starting with "; ") says what the user can do.
    pub fn check_numeric(&self, column: usize, hint: &str) -> Result<()> {
        let column = &self.columns[column];
        match column.texts.first() {
            None => Ok(()),
            Some((row, text)) => Err(Error::NotNumeric {
                at: self.place(*row),
                column: column.name.clone(),
                value: text.clone(),
                count: column.texts.len(),
                hint: hint.to_string(),
            }),
        }
    }

    /// The column names, shortened after 40.
    pub fn column_list(&self) -> String {
        let mut names: Vec<&str> = self.columns.iter().take(40).map(|c| c.name()).collect();
        if self.columns.len() > 40 {
            names.push("…");
        }
        names.join(", ")
    }

    /// A row's place for messages: `file.csv line 17` or `campaign 3 row 17`.
    pub fn place(&self, row: usize) -> String {
        let unit = if self.lines.is_some() { "line" } else { "row" };
        format!("{} {unit} {}", self.source, self.line_number(row))
    }

    /// A row's 1-based line in the file, or its 1-based number for rows handed over.
    pub fn line_number(&self, row: usize) -> u64 {
        self.lines
            .as_ref()
            .map_or(row as u64 + 1, |lines| lines[row])
    }
}

/// Passes bytes through and notes the offset of every newline.
struct NewlineIndex<R> {
    inner: R,
    offset: u64,
    newlines: Rc<RefCell<Vec<u64>>>,
}

impl<R: Read> Read for NewlineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut newlines = self.newlines.borrow_mut();
        for (i, _) in buf[..n].iter().enumerate().filter(|(_, b)| **b == b'\n') {
            newlines.push(self.offset + i as u64);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// A column name without a tstat `:N` position suffix (`c_pkts_all:3` → `c_pkts_all`).
pub fn base_name(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((base, pos)) if !pos.is_empty() && pos.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

/// tstat writes `#c_ip:1` or `#15#c_ip:1` as the first header cell.
fn strip_tstat_hash(first: &str) -> &str {
    let Some(rest) = first.strip_prefix('#') else {
        return first;
    };
    match rest.split_once('#') {
        Some((digits, name)) if digits.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => rest,
    }
}

/// The most frequent of `,` tab `;` in the header line; space if none of them occurs.
fn detect_delimiter(header: &str) -> u8 {
    let header = header.trim();
    let best = [b',', b'\t', b';']
        .into_iter()
        .map(|d| (header.bytes().filter(|&b| b == d).count(), d))
        .max_by_key(|&(count, _)| count)
        .filter(|&(count, _)| count > 0);
    match best {
        Some((_, d)) => d,
        None if header.contains(' ') => b' ',
        None => b',',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Frame> {
        Frame::read_csv(text.as_bytes(), "t.csv", None)
    }

    #[test]
    fn cells_are_numbers_missing_or_text() {
        assert_eq!(Cell::parse(" 1.5 "), Cell::Number(1.5));
        assert_eq!(Cell::parse("NA"), Cell::Missing);
        assert_eq!(Cell::parse(""), Cell::Missing);
        assert_eq!(Cell::parse("NaN"), Cell::Missing);
        assert_eq!(Cell::parse("inf"), Cell::Text("inf".into()));
        assert_eq!(Cell::parse("1.2.3"), Cell::Text("1.2.3".into()));
    }

    #[test]
    fn delimiters_are_detected_from_the_header() {
        for text in [
            "a,b\n1,2\n",
            "a\tb\n1\t2\n",
            "a;b\n1;2\n",
            "#a:1 b:2\n1 2\n",
        ] {
            let f = read(text).unwrap();
            assert_eq!(f.columns().len(), 2, "{text:?}");
            assert_eq!(f.columns()[1].values(), &[2.0]);
        }
        let bom = read("\u{feff}a;b\r\n1;2\r\n").unwrap();
        assert_eq!(bom.find("a").unwrap(), 0);
        assert_eq!(bom.columns()[1].values(), &[2.0]);
        let tstat = read("#15#c_ip:1 c_pkts_all:3\n10.0.0.1 7\n").unwrap();
        assert_eq!(tstat.columns()[0].name(), "c_ip:1");
        assert_eq!(tstat.find("c_pkts_all").unwrap(), 1);
    }

    #[test]
    fn ragged_rows_name_the_line() {
        let err = read("a,b,c\n1,2,3\n\n4,5\n").unwrap_err().to_string();
        assert!(
            err.contains("t.csv line 4: 2 fields, but the header has 3"),
            "{err}"
        );
    }

    #[test]
    fn empty_inputs_are_refused() {
        assert!(read("").unwrap_err().to_string().contains("no header"));
        let err = read("a,b\n").unwrap_err().to_string();
        assert!(err.contains("a header but no data rows"), "{err}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let err = read("a,b,a\n1,2,3\n").unwrap_err().to_string();
        assert!(err.contains("column 'a' appears twice"), "{err}");
    }

    #[test]
    fn places_are_file_lines_or_row_numbers() {
        let f = read("a\n1\n\n2\n").unwrap();
        assert_eq!(f.place(1), "t.csv line 4");
        let rows = Frame::from_numeric_rows("campaign 3", vec!["a".into()], [vec![Some(1.0)]]);
        assert_eq!(rows.unwrap().place(0), "campaign 3 row 1");
    }

    #[test]
    fn column_kinds() {
        let f = read("n,t,m\n1,x,1\n2,y,2\n,z,oops\n3,,4\n").unwrap();
        let kinds: Vec<ColumnKind> = f.columns().iter().map(Column::kind).collect();
        assert_eq!(
            kinds,
            [ColumnKind::Numeric, ColumnKind::Text, ColumnKind::Mixed]
        );
        assert_eq!(f.columns()[0].missing_count(), 1);
        assert_eq!(f.columns()[2].text_at(2), Some("oops"));
        assert_eq!(f.columns()[2].text_at(1), None);
    }
}
