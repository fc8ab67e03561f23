//! A CSV file as text: the header and every record, trimmed, with the file line it began on.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A CSV file read into memory. Fields are trimmed of surrounding ASCII whitespace.
#[derive(Clone, Debug)]
pub struct Table {
    pub path: PathBuf,
    /// Column names, unique: a name the file repeats is renamed as pandas does
    /// (`cli`, `cli.1`, `cli.2`), so every column can be named on the command line.
    pub header: Vec<String>,
    pub records: Vec<csv::StringRecord>,
    /// 1-based file line on which each record begins (the header is line 1).
    pub lines: Vec<u64>,
    /// The header as found in the file, repeats included.
    pub raw_header: Vec<String>,
}

impl Table {
    /// Index of the column called `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// "a, b, c" for error messages; long headers are cut short.
    pub fn columns_list(&self) -> String {
        const SHOW: usize = 12;
        let n = self.header.len();
        if n <= SHOW + 2 {
            self.header.join(", ")
        } else {
            format!(
                "{}, … ({} columns in all)",
                self.header[..SHOW].join(", "),
                n
            )
        }
    }

    /// The columns (0-based) that the file calls `name`, when it uses that name more than once.
    pub fn repeats(&self, name: &str) -> Vec<usize> {
        let cols: Vec<usize> = (0..self.raw_header.len())
            .filter(|&i| self.raw_header[i] == name)
            .collect();
        if cols.len() > 1 { cols } else { Vec::new() }
    }

    /// The error for a column name the user asked for that the file lacks.
    pub(crate) fn no_column(&self, flag: &str, name: &str) -> Error {
        let mut msg = format!(
            "no column '{name}' in {}; columns are: {}",
            self.path.display(),
            self.columns_list()
        );
        if let Some(h) = self.header.iter().find(|h| h.eq_ignore_ascii_case(name)) {
            msg.push_str(&format!(" (did you mean '{h}'?)"));
        }
        Error::flag(flag, msg)
    }
}

/// Read a `.csv` or gzip-compressed `.csv.gz` file (detected by its magic bytes).
///
/// A UTF-8 byte order mark is skipped, CRLF line ends work, fields may be quoted, blank lines
/// are ignored. The first non-blank line is the header.
pub fn read_table(path: &Path) -> Result<Table> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0) as usize;
    let mut input = BufReader::with_capacity(1 << 16, file);
    let gz = {
        let head = input.fill_buf().map_err(|e| Error::io(path, e))?;
        head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b
    };
    // The whole text in memory: the file line of a record is counted from its byte offset
    // (the csv crate's own line numbers lag behind blank lines and CRLF).
    let mut buf = Vec::with_capacity(if gz { len.saturating_mul(4) } else { len + 1 });
    if gz {
        flate2::bufread::MultiGzDecoder::new(input)
            .read_to_end(&mut buf)
            .map_err(|e| {
                Error::data(
                    path,
                    0,
                    0,
                    format!("cannot decompress: {e} (is it a valid .gz file?)"),
                )
            })?;
    } else {
        input
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path, e))?;
    }
    parse(path, &buf)
}

fn parse(path: &Path, buf: &[u8]) -> Result<Table> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(buf);
    let mut at = LineCounter {
        buf,
        pos: 0,
        line: 1,
    };

    let mut raw = csv::ByteRecord::new();
    // The header: the first record that is not a whitespace-only line.
    let (raw_header, header_line) = loop {
        let Some(rec) = next(path, &mut rdr, &mut raw, &mut at)? else {
            return Err(Error::data(
                path,
                1,
                0,
                "empty file: expected a header line",
            ));
        };
        if !is_blank(&rec) {
            break (
                rec.iter().map(str::to_owned).collect::<Vec<_>>(),
                at.line_of(&rec),
            );
        }
    };
    if let Some(i) = raw_header.iter().position(String::is_empty) {
        return Err(Error::data(
            path,
            header_line,
            i as u64 + 1,
            "empty column name in the header",
        ));
    }
    let header = unique_names(&raw_header);

    let mut records = Vec::new();
    let mut lines = Vec::new();
    // Whitespace-only lines (and `""`) come as one empty field; truly empty lines never reach
    // here (the csv reader skips them). With several columns such a line is no row and is
    // skipped. With a single column it may be a missing value in the middle of a series, which
    // must not vanish silently: it is kept when a row follows, and dropped at the end.
    let mut pending = Vec::new();
    while let Some(rec) = next(path, &mut rdr, &mut raw, &mut at)? {
        let line = at.line_of(&rec);
        if is_blank(&rec) {
            if header.len() == 1 {
                pending.push((rec, line));
            }
            continue;
        }
        if rec.len() != header.len() {
            return Err(Error::data(
                path,
                line,
                0,
                format!(
                    "line {line} has {} fields, header has {}",
                    rec.len(),
                    header.len()
                ),
            ));
        }
        for (r, l) in pending.drain(..) {
            records.push(r);
            lines.push(l);
        }
        records.push(rec);
        lines.push(line);
    }
    if records.is_empty() {
        return Err(Error::data(
            path,
            header_line + 1,
            0,
            "no data rows after the header",
        ));
    }
    Ok(Table {
        path: path.to_path_buf(),
        header,
        records,
        lines,
        raw_header,
    })
}

/// The header found at the start of a file's text, for the streaming loader.
pub(super) enum HeaderScan {
    /// The buffer may end inside the header record: read more and look again.
    NeedMore,
    Found {
        raw_header: Vec<String>,
        header_line: u64,
        /// Offset of the first byte after the header record.
        data_start: usize,
    },
}

/// The header of `buf`, the start of a file's text (`at_eof`: it is the whole text), read by the
/// same reader, with the same errors and line numbers, as [`read_table`].
pub(super) fn scan_header(path: &Path, buf: &[u8], at_eof: bool) -> Result<HeaderScan> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(buf);
    let mut at = LineCounter {
        buf,
        pos: 0,
        line: 1,
    };
    let mut raw = csv::ByteRecord::new();
    loop {
        let rec = match next(path, &mut rdr, &mut raw, &mut at) {
            // A cut through a multi-byte character at the end of the buffer is no error yet.
            Err(_) if !at_eof && rdr.position().byte() as usize >= buf.len() => {
                return Ok(HeaderScan::NeedMore);
            }
            r => r?,
        };
        let data_start = rdr.position().byte() as usize;
        if !at_eof && data_start >= buf.len() {
            return Ok(HeaderScan::NeedMore);
        }
        let Some(rec) = rec else {
            return Err(Error::data(
                path,
                1,
                0,
                "empty file: expected a header line",
            ));
        };
        if is_blank(&rec) {
            continue;
        }
        let header_line = at.line_of(&rec);
        let raw_header: Vec<String> = rec.iter().map(str::to_owned).collect();
        if let Some(i) = raw_header.iter().position(String::is_empty) {
            return Err(Error::data(
                path,
                header_line,
                i as u64 + 1,
                "empty column name in the header",
            ));
        }
        return Ok(HeaderScan::Found {
            raw_header,
            header_line,
            data_start,
        });
    }
}

/// Names made unique the way pandas' `read_csv` does: the first `x` stays `x`, later ones
/// become `x.1`, `x.2`, … (skipping names the file already uses).
pub(super) fn unique_names(raw: &[String]) -> Vec<String> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for name in raw {
        let mut col = name.clone();
        let mut cur = counts.get(&col).copied().unwrap_or(0);
        while cur > 0 {
            counts.insert(col.clone(), cur + 1);
            col = format!("{col}.{cur}");
            cur = counts.get(&col).copied().unwrap_or(0);
        }
        counts.insert(col.clone(), cur + 1);
        out.push(col);
    }
    out
}

/// File lines from byte offsets, counted forward as the reader goes.
struct LineCounter<'a> {
    buf: &'a [u8],
    pos: usize,
    line: u64,
}

impl LineCounter<'_> {
    /// The line of the first byte at or after `byte` that is not a line end: a record's
    /// position is where the previous one stopped, before any blank lines or the `\n` of a
    /// CRLF. Offsets must not decrease between calls.
    fn at(&mut self, byte: u64) -> u64 {
        let mut s = (byte as usize).clamp(self.pos, self.buf.len());
        while s < self.buf.len() && matches!(self.buf[s], b'\r' | b'\n') {
            s += 1;
        }
        self.line += self.buf[self.pos..s]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.pos = s;
        self.line
    }

    fn line_of(&mut self, rec: &csv::StringRecord) -> u64 {
        rec.position().map_or(0, |p| self.at(p.byte()))
    }
}

/// The next record, trimmed; `None` at the end of the input.
///
/// Read as bytes into `raw` (reused) and trimmed only when a field needs it: the csv crate's
/// own trimming rebuilds every record twice, which was most of the time spent on MNIST.
fn next(
    path: &Path,
    rdr: &mut csv::Reader<&[u8]>,
    raw: &mut csv::ByteRecord,
    at: &mut LineCounter,
) -> Result<Option<csv::StringRecord>> {
    if !rdr
        .read_byte_record(raw)
        .map_err(|e| csv_error(path, e, at))?
    {
        return Ok(None);
    }
    let space = |b: Option<&u8>| b.is_some_and(u8::is_ascii_whitespace);
    if raw.iter().any(|f| space(f.first()) || space(f.last())) {
        raw.trim();
    }
    match csv::StringRecord::from_byte_record(raw.clone()) {
        Ok(rec) => Ok(Some(rec)),
        Err(e) => {
            let field = e.utf8_error().field();
            let line = raw.position().map_or(0, |p| at.at(p.byte()));
            Err(Error::data(
                path,
                line,
                field as u64 + 1,
                format!(
                    "invalid UTF-8 in field {} (is the file UTF-8 text?)",
                    field + 1
                ),
            ))
        }
    }
}

/// A line holding nothing but whitespace, which the csv reader returns as one empty field.
fn is_blank(rec: &csv::StringRecord) -> bool {
    rec.len() == 1 && rec[0].is_empty()
}

fn csv_error(path: &Path, e: csv::Error, at: &mut LineCounter) -> Error {
    let msg = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Utf8 { pos, err } => Error::data(
            path,
            pos.map_or(0, |p| at.at(p.byte())),
            err.field() as u64 + 1,
            format!(
                "invalid UTF-8 in field {} (is the file UTF-8 text?)",
                err.field() + 1
            ),
        ),
        csv::ErrorKind::Io(io) => Error::io(path, io),
        _ => Error::data(path, 0, 0, format!("cannot parse CSV: {msg}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join(name);
        std::fs::File::create(&p)
            .and_then(|mut f| f.write_all(bytes))
            .expect("write");
        (dir, p)
    }

    #[test]
    fn reads_header_records_and_lines() {
        let (_d, p) = write("t.csv", b"a, b ,c\n1.5,2,3\n\n 4 ,\"5,5\",6\n\n");
        let t = read_table(&p).unwrap();
        assert_eq!(t.header, ["a", "b", "c"]);
        assert_eq!(t.records.len(), 2);
        assert_eq!(t.lines, [2, 4]);
        assert_eq!(&t.records[1][0], "4");
        assert_eq!(&t.records[1][1], "5,5");
    }

    #[test]
    fn whitespace_only_lines_are_blank() {
        let (_d, p) = write("t.csv", b"a,b\n1,2\n   \n3,4\n  \n");
        let t = read_table(&p).unwrap();
        assert_eq!(t.lines, [2, 4]);
        // One column: a blank line between values is a missing value; at the end, nothing.
        let (_d, p) = write("one.csv", b"v\n1\n  \n3\n\"\"\n \n");
        let t = read_table(&p).unwrap();
        assert_eq!(t.lines, [2, 3, 4]);
        assert_eq!(&t.records[1][0], "");
    }

    #[test]
    fn repeated_names_are_renamed_like_pandas() {
        let raw: Vec<String> = ["a", "b", "a", "a.1", "a", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(unique_names(&raw), ["a", "b", "a.1", "a.1.1", "a.2", "b.1"]);
        let (_d, p) = write("rep.csv", b"x,y,x\n1,2,3\n");
        let t = read_table(&p).unwrap();
        assert_eq!(t.header, ["x", "y", "x.1"]);
        assert_eq!(t.raw_header, ["x", "y", "x"]);
        assert_eq!(t.repeats("x"), [0, 2]);
        assert!(t.repeats("y").is_empty());
    }

    #[test]
    fn ragged_row_names_its_line() {
        let (_d, p) = write("rag.csv", b"a,b,c\n1,2,3\n4,5\n");
        let e = read_table(&p).unwrap_err().to_string();
        assert!(e.contains("rag.csv:3:"), "{e}");
        assert!(e.contains("line 3 has 2 fields, header has 3"), "{e}");
    }

    #[test]
    fn long_column_lists_are_cut() {
        let (_d, p) = write(
            "w.csv",
            format!(
                "{}\n{}\n",
                (0..30)
                    .map(|i| format!("c{i}"))
                    .collect::<Vec<_>>()
                    .join(","),
                vec!["7"; 30].join(",")
            )
            .as_bytes(),
        );
        let t = read_table(&p).unwrap();
        let s = t.columns_list();
        assert!(s.starts_with("c0, c1, "), "{s}");
        assert!(s.ends_with("… (30 columns in all)"), "{s}");
        let e = t.no_column("--target", "C3").to_string();
        assert!(e.contains("did you mean 'c3'?"), "{e}");
    }
}
