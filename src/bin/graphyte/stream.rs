//! `graphyte send -`: lines from stdin, read in large chunks, split with `memchr`, checked in
//! place by a [`LineBatch`], and handed to the worker a chunk at a time.

use std::io::{self, Read};
use std::time::Instant;

use graphyte::{DryRun, Error, LineBatch, Sender};

use crate::args::SendArgs;
use crate::send::{line_batch, print_dry};
use crate::watch::Watch;
use crate::{Status, complain};

/// Bytes read at a time; a line longer than this is refused without being held whole.
const READ_SIZE: usize = 1 << 18;

/// The most of a bad line shown in its report.
const SHOWN: usize = 120;

/// What the stream did, for the summary and the exit status.
#[derive(Debug, Default)]
struct Tally {
    /// Lines read, empty ones not counted.
    read: u64,
    refused: u64,
    /// Lines accepted and then lost before reaching the sender (a full queue it gave up on).
    lost: u64,
    /// A bad line under `--strict`, or a read error: the rest of the input was not read.
    stopped: bool,
}

pub fn run(args: &SendArgs, sender: &Sender, dry: Option<&DryRun>) -> Status {
    let started = Instant::now();
    let watch = Watch::start(sender, args, dry.is_none());
    let mut lines = Lines {
        args,
        batch: line_batch(args, sender),
        number: 0,
        tally: Tally::default(),
    };
    let result = read_all(&mut io::stdin().lock(), |chunk| {
        let going = lines.take(chunk);
        let handed = lines.hand_over(dry, args);
        watch.lines_read(lines.tally.read);
        going && handed
    });
    if let Err(err) = result {
        complain(format_args!("reading stdin: {err}"));
        lines.tally.stopped = true;
    }
    let tally = lines.tally;
    // Everything is handed over: deliver it, or give up at the timeout.
    let shutdown = sender.shutdown(args.timeout);
    let gave_up = watch.stop();
    let stats = sender.stats();
    let accepted = tally.read - tally.refused;
    let not_delivered = accepted.saturating_sub(stats.sent);
    if let Err(err) = shutdown
        && not_delivered > 0
    {
        complain(format_args!("delivering the last lines: {err}"));
    }
    if gave_up {
        complain(format_args!(
            "Carbon took nothing for {:?}: gave up (see --timeout)",
            args.timeout
        ));
    }
    if !args.quiet {
        let secs = started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            tally.read as f64 / secs
        } else {
            0.0
        };
        eprintln!(
            "graphyte: {} lines read, {} sent, {} refused, {} dropped in {secs:.2} s ({} lines/s){}",
            tally.read,
            stats.sent,
            tally.refused,
            not_delivered,
            rate.round() as u64,
            if tally.stopped { "; stopped early" } else { "" },
        );
    }
    if tally.refused > 0 || not_delivered > 0 || tally.stopped || tally.lost > 0 {
        Status::Incomplete
    } else {
        Status::Sent
    }
}

/// Reads `input` to its end in large chunks and gives each run of whole lines (newlines
/// included) to `lines`, which returns `false` to stop. A last line without its newline
/// comes last. A line longer than the read buffer is given as the bytes read so far
/// without the rest, which is skipped: it is refused for its length either way.
fn read_all(input: &mut impl Read, mut lines: impl FnMut(Chunk<'_>) -> bool) -> io::Result<()> {
    let mut buf = vec![0u8; READ_SIZE];
    let mut filled = 0;
    // Inside a line too long for the buffer: skip to its end.
    let mut skipping = false;
    loop {
        let read = match input.read(&mut buf[filled..]) {
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if read == 0 {
            if filled > 0 && !skipping {
                lines(Chunk::Last(&buf[..filled]));
            }
            return Ok(());
        }
        let end = filled + read;
        let mut start = 0;
        if skipping {
            match memchr::memchr(b'\n', &buf[filled..end]) {
                Some(newline) => {
                    start = filled + newline + 1;
                    skipping = false;
                }
                None => {
                    filled = 0;
                    continue;
                }
            }
        }
        let whole = match memchr::memrchr(b'\n', &buf[start..end]) {
            Some(newline) => start + newline + 1,
            None => start,
        };
        if whole > start && !lines(Chunk::Lines(&buf[start..whole])) {
            return Ok(());
        }
        buf.copy_within(whole..end, 0);
        filled = end - whole;
        if filled == buf.len() {
            if !lines(Chunk::TooLong(&buf[..SHOWN])) {
                return Ok(());
            }
            filled = 0;
            skipping = true;
        }
    }
}

/// What [`read_all`] hands on.
enum Chunk<'a> {
    /// Whole lines, each ending in a newline.
    Lines(&'a [u8]),
    /// The input's last line, which has no newline.
    Last(&'a [u8]),
    /// The start of a line longer than the read buffer.
    TooLong(&'a [u8]),
}

struct Lines<'a> {
    args: &'a SendArgs,
    batch: LineBatch,
    /// The number of the last line read, empty ones included.
    number: u64,
    tally: Tally,
}

impl Lines<'_> {
    /// Checks every line of the chunk into the batch; `false` to stop reading.
    fn take(&mut self, chunk: Chunk<'_>) -> bool {
        match chunk {
            Chunk::Lines(lines) => {
                let mut start = 0;
                for newline in memchr::memchr_iter(b'\n', lines) {
                    if !self.line(&lines[start..newline]) {
                        return false;
                    }
                    start = newline + 1;
                }
                true
            }
            Chunk::Last(line) => self.line(line),
            Chunk::TooLong(start) => {
                self.number += 1;
                self.tally.read += 1;
                self.refuse(
                    start,
                    &Error::LineTooLong {
                        len: READ_SIZE,
                        max: graphyte::MAX_LINE_LEN,
                    },
                )
            }
        }
    }

    fn line(&mut self, line: &[u8]) -> bool {
        self.number += 1;
        if line.is_empty() {
            return true;
        }
        self.tally.read += 1;
        match self.batch.push(line) {
            Ok(()) => true,
            Err(err) => self.refuse(line, &err),
        }
    }

    /// Reports a bad line; `false` under `--strict`.
    fn refuse(&mut self, line: &[u8], err: &Error) -> bool {
        self.tally.refused += 1;
        let shown = &line[..line.len().min(SHOWN)];
        let more = if line.len() > SHOWN { "…" } else { "" };
        let reason = match err {
            // Its message holds the whole line, shown here anyway.
            Error::InvalidLine { reason, .. } => (*reason).to_owned(),
            _ => err.to_string(),
        };
        complain(format_args!(
            "line {}: {reason}: {:?}{more}",
            self.number,
            String::from_utf8_lossy(shown)
        ));
        if self.args.strict {
            complain(format_args!(
                "--strict: stopping at line {}; the lines before it were sent",
                self.number
            ));
            self.tally.stopped = true;
            return false;
        }
        true
    }

    /// Hands the lines checked so far to the sender (in a dry run, prints them); `false`
    /// once the sender takes no more (the watchdog gave up).
    fn hand_over(&mut self, dry: Option<&DryRun>, args: &SendArgs) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let outcome = self.batch.send();
        self.tally.lost += outcome.lost as u64;
        if let Some(dry) = dry {
            print_dry(args, dry);
        }
        if matches!(outcome.first_error, Some(Error::Closed)) {
            self.tally.stopped = true;
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `read_all` hands on, as text, reading `input` a few bytes at a time.
    fn chunks(input: &[u8], step: usize) -> Vec<String> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        read_all(&mut Trickle(input, step), |chunk| {
            out.push(match chunk {
                Chunk::Lines(lines) => format!("lines {}", String::from_utf8_lossy(lines)),
                Chunk::Last(line) => format!("last {}", String::from_utf8_lossy(line)),
                Chunk::TooLong(start) => format!("too long {}", start.len()),
            });
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn lines_split_across_reads_come_out_whole() {
        assert_eq!(
            chunks(b"a 1\nb 2\nc 3\n", 5),
            ["lines a 1\n", "lines b 2\n", "lines c 3\n"]
        );
    }

    #[test]
    fn a_last_line_without_its_newline_comes_last() {
        assert_eq!(chunks(b"a 1\nb 2", 100), ["lines a 1\n", "last b 2"]);
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_reported_once_and_skipped_to_its_end() {
        let mut input = b"a 1\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', READ_SIZE * 2 + 10));
        input.extend_from_slice(b"\nb 2\n");
        assert_eq!(
            chunks(&input, 1 << 16),
            [
                "lines a 1\n".to_owned(),
                format!("too long {SHOWN}"),
                "lines b 2\n".to_owned()
            ]
        );
    }
}
