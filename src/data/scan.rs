//! A CSV file streamed in record-aligned chunks, parsed on every core, merged in file order.
//!
//! One thread reads (and un-gzips) the file and cuts its text into blocks of about
//! [`BLOCK`] bytes that end on a record boundary; worker threads turn each block into whatever
//! the caller's `parse` makes of it; the calling thread receives the results in file order.
//! At most a few blocks are in flight, so memory is bounded by the results, not the text.
//!
//! A block boundary must not fall inside a quoted field: blocks without a `"` are cut after
//! their last `\n`; blocks with one are cut after the last `\n` that the quoting state machine
//! of `csv_core` (the csv crate's own parser) would see outside quotes. Inside a block,
//! [`for_each_record`] yields the same records and fields as the csv crate would, and the file
//! line of each record counted the same way as [`super::read_table`] counts it.

use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::table::{HeaderScan, scan_header};
use crate::error::{Error, Result};

/// Bytes of text per block: big enough that a block's bookkeeping is noise, small enough that
/// a few blocks in flight on every core stay far below the matrix.
pub(crate) const BLOCK: usize = 4 << 20;

/// An opened CSV (or gzip CSV) file whose header has been read.
pub(crate) struct Opened {
    pub path: PathBuf,
    pub raw_header: Vec<String>,
    pub header_line: u64,
    /// `\n` bytes before the first data byte: a record's line is 1 + the `\n`s before it.
    pub newlines_before: u64,
    /// Offset of the first data byte in the (decompressed) text.
    pub data_start: u64,
    /// Text after the header that was read while looking for it.
    first: Vec<u8>,
    reader: Box<dyn Read + Send>,
    eof: bool,
    pub gz: bool,
    /// Size of the file on disk, and how much of it has been read (for the progress bar).
    pub file_len: u64,
    read: Arc<AtomicU64>,
}

/// Counts the bytes taken from the file, before any decompression.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Open `path` (gzip detected by its magic bytes) and read its header.
pub(crate) fn open(path: &Path) -> Result<Opened> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match file
            .read(&mut magic[got..])
            .map_err(|e| Error::io(path, e))?
        {
            0 => break,
            n => got += n,
        }
    }
    let read = Arc::new(AtomicU64::new(got as u64));
    let gz = got == 2 && magic == [0x1f, 0x8b];
    let head = std::io::Cursor::new(magic[..got].to_vec());
    let counted = Counting {
        inner: file,
        read: read.clone(),
    };
    let raw = BufReader::with_capacity(1 << 16, head.chain(counted));
    let reader: Box<dyn Read + Send> = if gz {
        Box::new(flate2::bufread::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let mut o = Opened {
        path: path.to_path_buf(),
        raw_header: Vec::new(),
        header_line: 0,
        newlines_before: 0,
        data_start: 0,
        first: Vec::new(),
        reader,
        eof: false,
        gz,
        file_len,
        read,
    };
    let mut want = 1 << 16;
    loop {
        o.fill(want)?;
        match scan_header(path, &o.first, o.eof)? {
            HeaderScan::NeedMore => want = o.first.len() * 2,
            HeaderScan::Found {
                raw_header,
                header_line,
                data_start,
            } => {
                o.newlines_before = count_newlines(&o.first[..data_start]);
                o.data_start = data_start as u64;
                o.first.drain(..data_start);
                o.raw_header = raw_header;
                o.header_line = header_line;
                return Ok(o);
            }
        }
    }
}

impl Opened {
    /// Read until `first` holds `want` bytes or the text ends.
    fn fill(&mut self, want: usize) -> Result<()> {
        fill(
            &mut self.reader,
            &mut self.first,
            want,
            &self.path,
            self.gz,
            &mut self.eof,
        )
    }
}

fn fill(
    r: &mut dyn Read,
    buf: &mut Vec<u8>,
    want: usize,
    path: &Path,
    gz: bool,
    eof: &mut bool,
) -> Result<()> {
    if buf.capacity() < want {
        buf.reserve_exact(want - buf.len());
    }
    while !*eof && buf.len() < want {
        let len = buf.len();
        buf.resize(want, 0);
        match r.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                *eof = true;
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => {
                buf.truncate(len);
                return Err(read_error(path, gz, e));
            }
        }
    }
    Ok(())
}

fn read_error(path: &Path, gz: bool, e: std::io::Error) -> Error {
    if gz {
        Error::data(
            path,
            0,
            0,
            format!("cannot decompress: {e} (is it a valid .gz file?)"),
        )
    } else {
        Error::io(path, e)
    }
}

fn count_newlines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

/// End of the last complete record in `b` (which starts at a record boundary), if any.
fn last_record_end(b: &[u8]) -> Option<usize> {
    if memchr::memchr(b'"', b).is_none() {
        return memchr::memrchr(b'\n', b).map(|i| i + 1);
    }
    // csv_core's quoting states, enough to know whether a `\n` ends a record.
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        Start,
        Field,
        Quoted,
        QuoteInQuoted,
    }
    let mut s = S::Start;
    let mut last = None;
    for (i, &c) in b.iter().enumerate() {
        s = match (s, c) {
            (S::Quoted, b'"') => S::QuoteInQuoted,
            (S::Quoted, _) => S::Quoted,
            (S::Start, b'"') | (S::QuoteInQuoted, b'"') => S::Quoted,
            (_, b',') => S::Start,
            (_, b'\n') => {
                last = Some(i + 1);
                S::Start
            }
            (_, b'\r') => S::Start,
            _ => S::Field,
        };
    }
    last
}

/// What the reader thread hands a worker.
struct Block {
    index: usize,
    text: Vec<u8>,
}

/// Shows a progress bar by file bytes once a load has taken over a second.
struct Progress {
    on: bool,
    start: Instant,
    bar: Option<indicatif::ProgressBar>,
    len: u64,
}

impl Progress {
    fn tick(&mut self, done: u64) {
        if !self.on {
            return;
        }
        if self.bar.is_none() && self.start.elapsed() > Duration::from_secs(1) {
            let bar = indicatif::ProgressBar::new(self.len);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "  reading {bar:40} {bytes}/{total_bytes} {bytes_per_sec}",
            ) {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        }
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Stream the text after the header through `parse` on all cores and hand the results to
/// `merge` in file order, with the block's index. `merge` may stop the scan early
/// (`ControlFlow::Break`). Read errors come back as errors; `parse` and `merge` own theirs.
pub(crate) fn scan<T, P, M>(
    o: Opened,
    progress: bool,
    block: usize,
    parse: P,
    mut merge: M,
) -> Result<()>
where
    T: Send,
    P: Fn(&[u8]) -> T + Sync,
    M: FnMut(usize, T) -> ControlFlow<()>,
{
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 16);
    // Blocks in flight (queued, parsing, or parsed and waiting for an earlier one).
    let in_flight = 2 * workers + 1;
    let stop = AtomicBool::new(false);
    let (work_tx, work_rx) = sync_channel::<Block>(workers);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = sync_channel::<(usize, T)>(in_flight);
    let (ticket_tx, ticket_rx) = sync_channel::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = ticket_tx.send(());
    }
    std::thread::scope(|s| {
        let stop_ref = &stop;
        let reader =
            s.spawn(move || read_blocks(o, progress, block, stop_ref, &ticket_rx, work_tx));
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let (work_rx, parse, stop) = (&work_rx, &parse, &stop);
            s.spawn(move || work(work_rx, parse, stop, done_tx));
        }
        drop(done_tx);
        let mut next = 0;
        let mut pending = std::collections::BTreeMap::new();
        for (i, out) in done_rx.iter() {
            pending.insert(i, out);
            while let Some(out) = pending.remove(&next) {
                let _ = ticket_tx.send(());
                if merge(next, out).is_break() {
                    stop.store(true, Ordering::Relaxed);
                }
                next += 1;
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        // Unblock a reader waiting for a ticket, and workers waiting to hand in a result.
        let _ = ticket_tx.try_send(());
        drop(done_rx);
        reader
            .join()
            .unwrap_or_else(|_| Err(Error::internal("the CSV reader thread panicked")))
    })
}

fn work<T, P: Fn(&[u8]) -> T>(
    rx: &Mutex<Receiver<Block>>,
    parse: &P,
    stop: &AtomicBool,
    done: std::sync::mpsc::SyncSender<(usize, T)>,
) {
    loop {
        let block = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(block) = block else { return };
        // Stopped: drain the queue so the reader is never left blocked on a full one.
        if stop.load(Ordering::Relaxed) {
            continue;
        }
        let out = parse(&block.text);
        if done.send((block.index, out)).is_err() {
            return;
        }
    }
}

/// The reader thread: cut the text into record-aligned blocks and queue them.
fn read_blocks(
    mut o: Opened,
    progress: bool,
    block: usize,
    stop: &AtomicBool,
    tickets: &Receiver<()>,
    work: std::sync::mpsc::SyncSender<Block>,
) -> Result<()> {
    let mut bar = Progress {
        on: progress,
        start: Instant::now(),
        bar: None,
        len: o.file_len,
    };
    let mut buf = std::mem::take(&mut o.first);
    let mut index = 0;
    let block = if block == 0 { BLOCK } else { block };
    let mut want = block;
    loop {
        fill(&mut o.reader, &mut buf, want, &o.path, o.gz, &mut o.eof)?;
        bar.tick(o.read.load(Ordering::Relaxed));
        let cut = if o.eof {
            buf.len()
        } else {
            match last_record_end(&buf) {
                Some(c) => c,
                // One record longer than a block: read on.
                None => {
                    want = buf.len() * 2;
                    continue;
                }
            }
        };
        if cut == 0 {
            return Ok(());
        }
        let mut rest = Vec::with_capacity(block.max(buf.len() - cut) + (1 << 16));
        rest.extend_from_slice(&buf[cut..]);
        buf.truncate(cut);
        let text = std::mem::replace(&mut buf, rest);
        if tickets.recv().is_err() || stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if work.send(Block { index, text }).is_err() {
            return Ok(());
        }
        index += 1;
        want = block;
        if o.eof && buf.is_empty() {
            return Ok(());
        }
    }
}

/// A record's fields as ranges into `bytes`, trimmed of surrounding ASCII whitespace as the
/// text reader trims them.
pub(crate) struct Fields<'a> {
    pub bytes: &'a [u8],
    pub ranges: &'a [(u32, u32)],
}

impl<'a> Fields<'a> {
    pub fn len(&self) -> usize {
        self.ranges.len()
    }
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (a, b) = self.ranges[i];
        &self.bytes[a as usize..b as usize]
    }
    /// Field `i` as `(start, end)` in `bytes`.
    #[inline]
    pub fn range(&self, i: usize) -> (usize, usize) {
        let (a, b) = self.ranges[i];
        (a as usize, b as usize)
    }
    /// Whitespace-only lines (and `""`) come as one empty field: no row.
    pub fn is_blank(&self) -> bool {
        self.ranges.len() == 1 && self.get(0).is_empty()
    }
}

#[inline]
pub(crate) fn trimmed(b: &[u8], mut a: usize, mut e: usize) -> (u32, u32) {
    while a < e && b[a].is_ascii_whitespace() {
        a += 1;
    }
    while e > a && b[e - 1].is_ascii_whitespace() {
        e -= 1;
    }
    (a as u32, e as u32)
}

/// Call `f` with every record of `chunk` and its line, counted as `\n`s before the record's
/// first byte (add the chunk's own offset and 1 for the file line). Returns the `\n`s in the
/// chunk. Blocks are below 4 GiB (u32 offsets).
pub(crate) fn for_each_record(
    chunk: &[u8],
    mut f: impl FnMut(&Fields, u64) -> ControlFlow<()>,
) -> u64 {
    if memchr::memchr(b'"', chunk).is_some() {
        return quoted_records(chunk, f);
    }
    // Fields are split at commas: exactly what csv_core does with such input.
    let mut ranges: Vec<(u32, u32)> = Vec::with_capacity(64);
    for_each_line(chunk, |(pos, end), nl| {
        split_fields(chunk, pos, end, &mut ranges);
        let fields = Fields {
            bytes: chunk,
            ranges: &ranges,
        };
        f(&fields, nl)
    })
}

/// Calls `f` with the range of every record of a chunk without quotes and its line (`\n`s
/// before it): a record is a run of bytes between `\r` / `\n`, and empty runs are no
/// records. Returns the chunk's `\n`s, or those before the record where `f` stopped.
pub(crate) fn for_each_line(
    chunk: &[u8],
    mut f: impl FnMut((usize, usize), u64) -> ControlFlow<()>,
) -> u64 {
    let mut nl = 0u64;
    let mut pos = 0;
    while pos < chunk.len() {
        let end = memchr::memchr2(b'\n', b'\r', &chunk[pos..]).map_or(chunk.len(), |i| pos + i);
        if end > pos && f((pos, end), nl).is_break() {
            return nl;
        }
        if end < chunk.len() && chunk[end] == b'\n' {
            nl += 1;
        }
        pos = end + 1;
    }
    nl
}

/// The fields of the record `chunk[pos..end]` (no quotes), split at commas and trimmed.
pub(crate) fn split_fields(chunk: &[u8], pos: usize, end: usize, ranges: &mut Vec<(u32, u32)>) {
    ranges.clear();
    let mut a = pos;
    for_each_comma(chunk, pos, end, |c| {
        ranges.push(trimmed(chunk, a, c));
        a = c + 1;
        true
    });
    ranges.push(trimmed(chunk, a, end));
}

/// Calls `f` with the index of every comma in `chunk[pos..end]`, in order, until it returns
/// false; returns whether it never did. Commas are found 8 bytes at a time: a cell is a few
/// bytes, and a search call per comma costs more than the words it reads.
#[inline(always)]
pub(crate) fn for_each_comma(
    chunk: &[u8],
    pos: usize,
    end: usize,
    mut f: impl FnMut(usize) -> bool,
) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7F * ONES;
    let mut i = pos;
    while i + 8 <= end {
        let w = u64::from_le_bytes(chunk[i..i + 8].try_into().expect("8 bytes"));
        // Exactly the zero bytes of w ^ ",,,,,,,," get their high bit (no carries out of bytes).
        let x = w ^ (b',' as u64 * ONES);
        let mut commas = !(((x & LOW7) + LOW7) | x | LOW7);
        while commas != 0 {
            if !f(i + (commas.trailing_zeros() / 8) as usize) {
                return false;
            }
            commas &= commas - 1;
        }
        i += 8;
    }
    (i..end).all(|c| chunk[c] != b',' || f(c))
}

/// The same with quotes: csv_core parses, fields land unquoted in `out`.
fn quoted_records(chunk: &[u8], mut f: impl FnMut(&Fields, u64) -> ControlFlow<()>) -> u64 {
    let mut rdr = csv_core::Reader::new();
    let mut out = vec![0u8; 1 << 12];
    let mut ends = vec![0usize; 64];
    let mut ranges: Vec<(u32, u32)> = Vec::with_capacity(64);
    let (mut pos, mut nl_pos, mut nl) = (0usize, 0usize, 0u64);
    let (mut nout, mut nend) = (0usize, 0usize);
    let mut start = None;
    loop {
        // The record starts at the first byte that is not a line end.
        let s = *start.get_or_insert_with(|| {
            let mut s = pos;
            while s < chunk.len() && matches!(chunk[s], b'\r' | b'\n') {
                s += 1;
            }
            s
        });
        let (res, nin, o, e) = rdr.read_record(&chunk[pos..], &mut out[nout..], &mut ends[nend..]);
        pos += nin;
        nout += o;
        nend += e;
        use csv_core::ReadRecordResult as R;
        match res {
            R::InputEmpty => continue,
            R::OutputFull => out.resize(out.len() * 2, 0),
            R::OutputEndsFull => ends.resize(ends.len() * 2, 0),
            R::End => break,
            R::Record => {
                nl += count_newlines(&chunk[nl_pos..s]);
                nl_pos = s;
                start = None;
                ranges.clear();
                let mut a = 0;
                for &end in &ends[..nend] {
                    ranges.push(trimmed(&out, a, end));
                    a = end;
                }
                let fields = Fields {
                    bytes: &out[..nout],
                    ranges: &ranges,
                };
                if f(&fields, nl).is_break() {
                    break;
                }
                (nout, nend) = (0, 0);
            }
        }
    }
    nl + count_newlines(&chunk[nl_pos..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &[u8]) -> Vec<(Vec<String>, u64)> {
        let mut v = Vec::new();
        for_each_record(text, |f, line| {
            let fields = (0..f.len())
                .map(|i| String::from_utf8_lossy(f.get(i)).into_owned())
                .collect();
            v.push((fields, line));
            ControlFlow::Continue(())
        });
        v
    }

    #[test]
    fn fields_and_lines_with_and_without_quotes() {
        let plain = records(b"1, 2 ,3\r\n\r\n  \n4,5,6");
        assert_eq!(plain[0], (vec!["1".into(), "2".into(), "3".into()], 0));
        assert_eq!(plain[1], (vec!["".into()], 2));
        assert_eq!(plain[2].1, 3);
        let quoted = records(b"\"a,b\",2\n\n\"x\ny\" , 3\n5,\"\"\"q\"\"\"\n");
        assert_eq!(quoted[0], (vec!["a,b".into(), "2".into()], 0));
        assert_eq!(quoted[1], (vec!["x\ny".into(), "3".into()], 2));
        assert_eq!(quoted[2], (vec!["5".into(), "\"q\"".into()], 4));
    }

    #[test]
    fn blocks_end_outside_quotes() {
        assert_eq!(last_record_end(b"1,2\n3,4"), Some(4));
        assert_eq!(last_record_end(b"1,\"a\nb\"\n3,\"x\n"), Some(8));
        assert_eq!(last_record_end(b"1,\"a\nb"), None);
        assert_eq!(last_record_end(b"1,a\"b\n2"), Some(6));
    }
}
