//! Forwarding plaintext lines that are already formatted: [`LineBatch`], which checks each
//! line by a sender's rules and hands many over in one piece.

use std::fmt;

use crate::error::Error;
use crate::parse::{check_plain, find_byte, parse_line, plain_run};
use crate::point::clock::now_secs;
use crate::point::metric::{Name, Point, Timestamp};
use crate::point::validate::MAX_PATH_LEN;
use crate::protocol::{Encode, Protocol, write_u64};
use crate::sender::{BatchOutcome, Sender};

/// Plaintext lines (`name[;tags] value [timestamp]`) checked one by one and sent together,
/// for a program that forwards lines it read (from a file, a pipe, a socket), as
/// `graphyte send -` does.
///
/// [`push`](LineBatch::push) checks a line with [`parse_line`] and by the sender's own rules,
/// exactly as a send of the same metric would be checked, and keeps it;
/// [`send`](LineBatch::send) hands what was kept to the sender. A line that is refused is
/// counted in [`Stats::refused`](crate::Stats::refused) and never sent.
///
/// Over plaintext, a line goes out **byte for byte as it came**: its value is not reformatted
/// (`42.0` stays `42.0`) and a line without a timestamp gets one (the time it was pushed, or
/// [`default_timestamp`](LineBatch::default_timestamp)) appended. The sender's prefix and
/// default tags still apply: with either, the path is written as a send would write it and
/// the rest of the line follows unchanged. Over pickle, each line becomes a point.
///
/// A background sender queues a plaintext batch as **one slot**, whatever its size, and the
/// worker writes it in frames of whole lines: a few thousand lines cost one queue operation
/// (under [`FullQueue::Drop`](crate::FullQueue::Drop), a batch that finds the queue full is
/// dropped whole). A synchronous sender writes it at once. A batch holds its sender (as a
/// clone does), and lines pushed but never sent are discarded with the batch, counted
/// nowhere: send before dropping it.
///
/// ```
/// let dry = graphyte::Sender::builder("unused").dry_run()?;
/// let mut batch = dry.sender().line_batch();
/// batch.push(b"disk.free 12.50 1700000000\n")?;
/// assert!(batch.push(b"disk used 3 1700000000").is_err()); // four fields
/// batch.push(b"disk.used 87.5")?; // stamped now
/// assert_eq!(batch.len(), 2);
/// assert_eq!(batch.send().accepted, 2);
/// assert!(dry.take().starts_with(b"disk.free 12.50 1700000000\ndisk.used 87.5 "));
/// # Ok::<(), graphyte::Error>(())
/// ```
pub struct LineBatch {
    sender: Sender,
    kept: Kept,
    /// For lines without one; `None`: the time a line is pushed.
    timestamp: Option<u32>,
}

enum Kept {
    /// Plaintext: the lines as they will be written.
    Text {
        bytes: Vec<u8>,
        count: usize,
        /// The fast path's settings; `None` when the sender has default tags.
        plain: Option<PlainRules>,
    },
    /// Any other protocol: the points the lines stand for.
    Points(Vec<Point>),
}

/// What the fast path needs of the sender, looked up once.
struct PlainRules {
    /// `"prefix."`, or empty.
    prefix: Box<[u8]>,
    /// The longest line, newline included.
    limit: usize,
}

impl fmt::Debug for LineBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineBatch")
            .field("lines", &self.len())
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// An empty [`LineBatch`] for this sender: lines are checked by its rules and sent
    /// through it.
    ///
    /// ```
    /// let sender = graphyte::Sender::builder("localhost").build()?;
    /// let mut batch = sender.line_batch();
    /// batch.push(b"app.jobs 3 1700000000")?;
    /// batch.send();
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn line_batch(&self) -> LineBatch {
        let encoder = self.encoder();
        let style = encoder.style();
        let kept = match encoder.protocol() {
            Protocol::Plaintext => Kept::Text {
                bytes: Vec::new(),
                count: 0,
                plain: style.default_tags().is_empty().then(|| PlainRules {
                    prefix: style.prefix().as_bytes().into(),
                    limit: encoder.limit(),
                }),
            },
            Protocol::Pickle => Kept::Points(Vec::new()),
        };
        LineBatch {
            sender: self.clone(),
            kept,
            timestamp: None,
        }
    }
}

impl LineBatch {
    /// Checks one line and keeps it to be sent. The line may end in `\n`; fields are
    /// separated by spaces or tabs.
    ///
    /// # Errors
    ///
    /// What [`parse_line`] refuses, and what a send of the same metric through this sender
    /// would be refused for (with the prefix, a path Carbon cannot store; a line too long
    /// for a frame or a datagram). Each refusal is counted in
    /// [`Stats::refused`](crate::Stats::refused); the batch keeps what it had.
    ///
    /// ```
    /// # let sender = graphyte::Sender::builder("localhost").build()?;
    /// let mut batch = sender.line_batch();
    /// assert!(batch.push(b"a.b nan 1700000000").is_err());
    /// assert!(batch.is_empty());
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    #[inline]
    pub fn push(&mut self, line: &[u8]) -> Result<(), Error> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if line.last() == Some(&b'\n') {
            // The parser would take off this one too, but it would be written.
            return Err(self.sender.refuse(Error::InvalidLine {
                line: String::from_utf8_lossy(line).into_owned(),
                reason: "ends in two newlines",
            }));
        }
        match &mut self.kept {
            Kept::Text {
                bytes,
                count,
                plain,
            } => {
                refill(&self.sender, bytes);
                let fast = plain.as_ref();
                let pushed =
                    if fast.is_some_and(|rules| push_plain(rules, self.timestamp, line, bytes)) {
                        Ok(())
                    } else {
                        push_text(&self.sender, self.timestamp, line, bytes)
                    };
                if pushed.is_ok() {
                    *count += 1;
                }
                pushed
            }
            Kept::Points(points) => {
                let point = to_point(&self.sender, self.timestamp, line)?;
                points.push(point);
                Ok(())
            }
        }
    }

    /// Checks and keeps every line of a chunk of a stream (lines ending in `\n`; the last
    /// may lack it), as [`push`](LineBatch::push) does line by line; empty lines are
    /// skipped. Each refused line is given to `refused` with its index in the chunk (from 0,
    /// empty lines counted), its bytes and the error; when that returns `false`, nothing
    /// after the line is looked at. Returns how many lines were looked at.
    ///
    /// Faster than `push` per line: runs of lines that go out as they are (a sender without
    /// prefix or default tags, lines with their timestamps) are checked where they lie and
    /// kept with one copy per run.
    ///
    /// ```
    /// let dry = graphyte::Sender::builder("unused").dry_run()?;
    /// let mut batch = dry.sender().line_batch();
    /// let mut bad = Vec::new();
    /// let seen = batch.push_lines(b"a 1 1700000000\nb x 1700000000\n\nc 3 1700000000\n", |i, _, err| {
    ///     bad.push((i, err.to_string()));
    ///     true
    /// });
    /// assert_eq!((seen, batch.len()), (4, 2));
    /// assert_eq!(bad, [(1, "invalid value: not a decimal number".to_string())]);
    /// batch.send();
    /// assert_eq!(dry.take(), b"a 1 1700000000\nc 3 1700000000\n");
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn push_lines(
        &mut self,
        lines: &[u8],
        mut refused: impl FnMut(usize, &[u8], Error) -> bool,
    ) -> usize {
        let as_they_are = match &self.kept {
            Kept::Text {
                plain: Some(rules), ..
            } if rules.prefix.is_empty() => Some(rules.limit),
            _ => None,
        };
        let mut index = 0;
        let mut at = 0;
        while at < lines.len() {
            if let Some(limit) = as_they_are {
                let (len, count) = plain_run(&lines[at..], limit);
                self.keep_run(&lines[at..at + len], count);
                at += len;
                index += count;
                if at == lines.len() {
                    break;
                }
            }
            let end = find_byte(&lines[at..], b'\n').map_or(lines.len(), |len| at + len);
            let line = &lines[at..end];
            if !line.is_empty()
                && let Err(err) = self.push(line)
                && !refused(index, line, err)
            {
                return index + 1;
            }
            index += 1;
            at = end + 1;
        }
        index
    }

    /// Keeps `count` lines checked where they lay, newlines included, as they are.
    fn keep_run(&mut self, lines: &[u8], count: usize) {
        if let Kept::Text {
            bytes, count: kept, ..
        } = &mut self.kept
            && count > 0
        {
            refill(&self.sender, bytes);
            bytes.extend_from_slice(lines);
            *kept += count;
        }
    }

    /// Sets the timestamp given to lines pushed from now on that have none of their own,
    /// instead of the time each is pushed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTimestamp`] for a time Carbon cannot take (before 1970-01-01T00:00:01
    /// or after 2106); the setting is then unchanged.
    ///
    /// ```
    /// let dry = graphyte::Sender::builder("unused").dry_run()?;
    /// let mut batch = dry.sender().line_batch();
    /// batch.default_timestamp(1_700_000_000)?;
    /// batch.push(b"a.b 1")?;
    /// batch.send();
    /// assert_eq!(dry.take(), b"a.b 1 1700000000\n");
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn default_timestamp(&mut self, timestamp: impl Into<Timestamp>) -> Result<(), Error> {
        self.timestamp = Some(timestamp.into().to_secs()?);
        Ok(())
    }

    /// Lines kept, not yet sent.
    pub fn len(&self) -> usize {
        match &self.kept {
            Kept::Text { count, .. } => *count,
            Kept::Points(points) => points.len(),
        }
    }

    /// True when no line is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands the lines kept to the sender and empties the batch, which can be filled again.
    /// Like a batch send, it never fails as a whole: the [`BatchOutcome`] says how many
    /// lines were accepted and how many were lost (a full queue, a sender shut down, or in
    /// synchronous mode a failed write). Refusals were reported by
    /// [`push`](LineBatch::push), so its `refused` is 0.
    ///
    /// ```
    /// # let sender = graphyte::Sender::builder("localhost").build()?;
    /// let mut batch = sender.line_batch();
    /// batch.push(b"a.b 1 1700000000")?;
    /// let outcome = batch.send();
    /// assert_eq!(outcome.accepted, 1);
    /// assert!(batch.is_empty());
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn send(&mut self) -> BatchOutcome {
        match &mut self.kept {
            Kept::Text { bytes, count, .. } => {
                if *count == 0 {
                    return BatchOutcome::default();
                }
                // The next lines go in a buffer the worker is done with, taken when they come.
                let full = std::mem::take(bytes);
                self.sender.submit_lines(full, std::mem::take(count))
            }
            Kept::Points(points) => self.sender.submit_points(points.drain(..)),
        }
    }
}

/// Gives an empty `bytes` a buffer the sender's worker is done with, if one is kept: a new
/// buffer per batch would cost a page fault per 4 KiB filled.
fn refill(sender: &Sender, bytes: &mut Vec<u8>) {
    if bytes.capacity() == 0
        && let Some(spare) = sender.spare_buffer()
    {
        *bytes = spare;
    }
}

/// The fast path: a plain line (see [`check_plain`]) for a sender without default tags,
/// appended with the prefix and, if missing, the timestamp. `false` leaves the line to
/// [`push_text`], which checks it fully and says what is wrong, if anything.
#[inline]
fn push_plain(rules: &PlainRules, timestamp: Option<u32>, line: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(plain) = check_plain(line) else {
        return false;
    };
    let prefix = &rules.prefix;
    let stamp_len = if plain.has_timestamp { 0 } else { 11 };
    let len = prefix.len() + line.len() + stamp_len + 1;
    if prefix.len() + plain.name_len > MAX_PATH_LEN || len > rules.limit {
        return false;
    }
    out.reserve(len);
    out.extend_from_slice(prefix);
    out.extend_from_slice(line);
    if !plain.has_timestamp {
        out.push(b' ');
        write_u64(u64::from(timestamp.unwrap_or_else(now_secs)), out);
    }
    out.push(b'\n');
    true
}

/// Any line, checked in full: parsed, then checked as a send of its metric would be. Without
/// a prefix or default tags it is kept as it came; with them, its path is rewritten and the
/// rest follows unchanged.
fn push_text(
    sender: &Sender,
    timestamp: Option<u32>,
    line: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let parsed = parse_line(line).map_err(|err| sender.refuse(err))?;
    let mut metric = parsed.to_metric();
    if parsed.timestamp().is_none() {
        metric = metric.timestamp(timestamp.unwrap_or_else(now_secs));
    }
    // The exact length is checked below, once the line is written.
    let (secs, tags) = sender.check_metric(&metric, false)?;
    let style = sender.encoder().style();
    let start = out.len();
    // A timestamp goes after the value with one space, whatever spacing the line ended with.
    let line = match parsed.timestamp() {
        Some(_) => line,
        None => line.trim_ascii_end(),
    };
    if style.prefix().is_empty() && style.default_tags().is_empty() {
        out.extend_from_slice(line);
    } else {
        let is_separator = |b: &u8| *b == b' ' || *b == b'\t';
        let path_start = line.iter().position(|b| !is_separator(b)).unwrap_or(0);
        let path_end = line[path_start..]
            .iter()
            .position(is_separator)
            .map_or(line.len(), |end| path_start + end);
        out.extend_from_slice(style.prefix().as_bytes());
        out.extend_from_slice(parsed.name().as_bytes());
        out.extend_from_slice(tags.as_deref().unwrap_or(style.default_tags()).as_bytes());
        out.extend_from_slice(&line[path_end..]);
    }
    if parsed.timestamp().is_none() {
        out.push(b' ');
        write_u64(u64::from(secs), out);
    }
    out.push(b'\n');
    let limit = sender.encoder().limit();
    if out.len() - start > limit {
        let len = out.len() - start;
        out.truncate(start);
        return Err(sender.refuse(Error::LineTooLong { len, max: limit }));
    }
    Ok(())
}

/// A line as a point, for protocols other than plaintext.
fn to_point(sender: &Sender, timestamp: Option<u32>, line: &[u8]) -> Result<Point, Error> {
    let parsed = parse_line(line).map_err(|err| sender.refuse(err))?;
    let mut metric = parsed.to_metric();
    if parsed.timestamp().is_none() {
        metric = metric.timestamp(timestamp.unwrap_or_else(now_secs));
    }
    let (secs, tags) = sender.check_metric(&metric, true)?;
    Ok(Point::new(
        Name::borrowed(parsed.name()),
        tags,
        parsed.value().0,
        secs,
    ))
}
