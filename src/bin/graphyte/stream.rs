//! `graphyte send -`: lines from stdin, read in large chunks, split with `memchr`, checked in
//! place by a [`LineBatch`](graphyte::LineBatch), and handed to the sender a chunk at a time.
//!
//! Checking is the work (reading and writing are a few copies), so chunks are checked by one
//! thread per core, each into its own batch, and handed over strictly in the order they were
//! read, their bad lines reported then: the output and the reports are those of one thread.

use std::io::{self, Read};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Instant;

use crossbeam_channel as channel;
use graphyte::{DryRun, Error, Sender};

use crate::args::SendArgs;
use crate::send::{line_batch, print_dry};
use crate::watch::Watch;
use crate::{Status, complain};

/// Bytes read at a time; a line longer than this is refused without being held whole.
const READ_SIZE: usize = 1 << 18;

/// The most of a bad line shown in its report.
const SHOWN: usize = 120;

/// Most checking threads: past a few, reading and sending are the limit.
const MAX_CHECKERS: usize = 4;

/// What the stream did, for the summary and the exit status.
#[derive(Debug, Default)]
struct Tally {
    /// Lines read, empty ones not counted.
    read: u64,
    refused: u64,
    /// Lines accepted and then lost before the sender took them (it was shut down).
    lost: u64,
    /// A bad line under `--strict`, a read error, or a sender that takes no more: the rest
    /// of the input was not read.
    stopped: bool,
}

pub fn run(args: &SendArgs, sender: &Sender, dry: Option<&DryRun>) -> Status {
    run_on(io::stdin(), args, sender, dry)
}

/// [`run`], with lines from `input`.
fn run_on(
    input: impl Read + Send + 'static,
    args: &SendArgs,
    sender: &Sender,
    dry: Option<&DryRun>,
) -> Status {
    let started = Instant::now();
    let watch = Watch::start(sender, args, dry.is_none());
    let gave_up = watch.gave_up();
    let checkers = thread::available_parallelism().map_or(1, |n| n.get().min(MAX_CHECKERS));
    let (order, stopped) = Order::new();
    let (pieces, to_check) = channel::bounded::<Piece>(checkers * 2);
    // Read buffers come back once checked: allocating (and zeroing) one per read costs more
    // than the reading.
    let (spare, spares) = channel::bounded::<Vec<u8>>(checkers * 4);
    let reading = read_in_background(input, spares, pieces, Arc::clone(&order.stopped));
    let read = thread::scope(|scope| {
        for _ in 0..checkers {
            let (to_check, spare) = (to_check.clone(), spare.clone());
            let ends = [gave_up.clone(), stopped.clone()];
            let (order, watch) = (&order, &watch);
            scope.spawn(move || {
                while let Some(piece) = next_piece(&to_check, &ends) {
                    let buf = check(piece, args, sender, dry, order, watch);
                    if buf.len() == READ_SIZE {
                        let _ = spare.try_send(buf);
                    }
                }
            });
        }
        // Once the watchdog gave up, or the stream stopped (--strict, a closed sender), the
        // reader is left behind: a quiet input (`tail -f`) must not hold the process.
        channel::select! {
            recv(reading) -> read => read.unwrap_or_else(|_| Err(io::Error::other("the reading thread died"))),
            recv(gave_up) -> _ => Ok(()),
            recv(stopped) -> _ => Ok(()),
        }
    });
    let mut tally = std::mem::take(&mut order.turn().tally);
    if let Err(err) = read {
        complain(format_args!("reading stdin: {err}"));
        tally.stopped = true;
    }
    // No shutdown of the watchdog's is under way past this.
    let gave_up = watch.stop();
    // Everything is handed over: deliver it, or give up at the timeout.
    let shutdown = sender.shutdown(args.timeout);
    let stats = sender.stats();
    let accepted = tally.read - tally.refused;
    let not_delivered = accepted.saturating_sub(stats.sent);
    if let Err(err) = &shutdown
        && not_delivered > 0
    {
        complain(format_args!("delivering the last lines: {err}"));
    }
    if shutdown.is_err() || gave_up {
        // The worker is still stuck on Carbon: dropping the last handle would wait for it
        // once more. The process ends without it.
        std::mem::forget(sender.clone());
    }
    if gave_up {
        tally.stopped = true;
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
        complain(format_args!(
            "{} lines read, {} sent, {} refused, {} dropped in {secs:.2} s ({} lines/s){}",
            tally.read,
            stats.sent,
            tally.refused,
            not_delivered,
            rate.round() as u64,
            if tally.stopped { "; stopped early" } else { "" },
        ));
    }
    if tally.refused > 0 || not_delivered > 0 || tally.stopped || tally.lost > 0 {
        Status::Incomplete
    } else {
        Status::Sent
    }
}

/// Runs [`read_all`] on a thread of its own, which hands each chunk on to `pieces` as a
/// [`Piece`] and stops when `stopped` is set. The receiver gets how the reading ended.
fn read_in_background(
    mut input: impl Read + Send + 'static,
    spares: channel::Receiver<Vec<u8>>,
    pieces: channel::Sender<Piece>,
    stopped: Arc<AtomicBool>,
) -> channel::Receiver<io::Result<()>> {
    let (done, reading) = channel::bounded(1);
    let ended = done.clone();
    let started = thread::Builder::new()
        .name("graphyte-stdin".into())
        .spawn(move || {
            let fresh = || spares.try_recv().unwrap_or_else(|_| vec![0u8; READ_SIZE]);
            let mut seq = 0;
            let read = read_all(&mut input, fresh, |kind, buf, range| {
                if stopped.load(Ordering::Relaxed) {
                    return false;
                }
                let piece = Piece {
                    seq,
                    kind,
                    buf,
                    range,
                };
                seq += 1;
                pieces.send(piece).is_ok()
            });
            // The checkers see the end of the input before the main thread sees it read.
            drop(pieces);
            let _ = ended.send(read);
        });
    if let Err(err) = started {
        let _ = done.send(Err(err));
    }
    reading
}

/// The next piece to check; `None` at the end of the input, or once the watchdog gave up
/// or the stream stopped (`ends`: channels that close then).
fn next_piece(
    to_check: &channel::Receiver<Piece>,
    [gave_up, stopped]: &[channel::Receiver<()>; 2],
) -> Option<Piece> {
    channel::select! {
        recv(to_check) -> piece => piece.ok(),
        recv(gave_up) -> _ => None,
        recv(stopped) -> _ => None,
    }
}

/// Reads `input` to its end in large chunks and gives each run of whole lines (newlines
/// included) to `lines`, in a buffer of its own, which returns `false` to stop. A last line
/// without its newline comes last. A line longer than the read buffer is given as its
/// first bytes, and the rest is skipped: it is refused for its length either way.
fn read_all(
    input: &mut impl Read,
    mut fresh: impl FnMut() -> Vec<u8>,
    mut lines: impl FnMut(Kind, Vec<u8>, Range<usize>) -> bool,
) -> io::Result<()> {
    let mut buf = fresh();
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
                lines(Kind::Last, buf, 0..filled);
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
        if whole > start {
            // The lines go in this buffer; the partial line after them starts the next.
            let mut next = fresh();
            next[..end - whole].copy_from_slice(&buf[whole..end]);
            let chunk = std::mem::replace(&mut buf, next);
            if !lines(Kind::Lines, chunk, start..whole) {
                return Ok(());
            }
        } else {
            buf.copy_within(start..end, 0);
        }
        filled = end - whole;
        if filled == buf.len() {
            if !lines(Kind::TooLong, buf[..SHOWN].to_vec(), 0..SHOWN) {
                return Ok(());
            }
            filled = 0;
            skipping = true;
        }
    }
}

/// What [`read_all`] hands on.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Whole lines, each ending in a newline.
    Lines,
    /// The input's last line, which has no newline.
    Last,
    /// The start of a line longer than the read buffer.
    TooLong,
}

/// A chunk of the input on its way to a checking thread: `buf[range]`; `seq` is its place
/// in the input.
struct Piece {
    seq: u64,
    kind: Kind,
    buf: Vec<u8>,
    range: Range<usize>,
}

/// Whose turn it is to hand over, and what was handed over so far.
struct Order {
    turn: Mutex<Turn>,
    changed: Condvar,
    /// Set with `tally.stopped`, for the reader, which takes no lock.
    stopped: Arc<AtomicBool>,
    /// Dropped when the stream stops, so that the main thread stops waiting for the reader.
    stop_signal: Mutex<Option<channel::Sender<()>>>,
}

#[derive(Default)]
struct Turn {
    /// The next piece to hand over.
    next: u64,
    /// Lines (empty ones included) in the pieces handed over: where the next one starts.
    lines: u64,
    tally: Tally,
}

impl Order {
    /// The order, and a channel that closes when the stream stops.
    fn new() -> (Order, channel::Receiver<()>) {
        let (signal, stopped) = channel::bounded(0);
        let order = Order {
            turn: Mutex::default(),
            changed: Condvar::new(),
            stopped: Arc::default(),
            stop_signal: Mutex::new(Some(signal)),
        };
        (order, stopped)
    }

    fn turn(&self) -> MutexGuard<'_, Turn> {
        self.turn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait_for(&self, seq: u64) -> MutexGuard<'_, Turn> {
        let mut turn = self.turn();
        while turn.next != seq {
            turn = self.changed.wait(turn).unwrap_or_else(|e| e.into_inner());
        }
        turn
    }
}

/// A piece's turn to hand over: passed on when dropped, also by a panic (which stops the
/// stream), so the next pieces never wait for a turn that cannot come.
struct Next<'a> {
    turn: MutexGuard<'a, Turn>,
    order: &'a Order,
}

impl Drop for Next<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.turn.tally.stopped = true;
        }
        if self.turn.tally.stopped {
            self.order.stopped.store(true, Ordering::Relaxed);
            drop(
                self.order
                    .stop_signal
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take(),
            );
        }
        self.turn.next += 1;
        self.order.changed.notify_all();
    }
}

/// A piece, checked.
#[derive(Default)]
struct Checked {
    /// Lines in the piece, empty ones included.
    lines: u64,
    /// Lines that are not empty.
    read: u64,
    /// Bad lines: the number within the piece, from 1, and what is wrong.
    refused: Vec<(u64, String)>,
    /// Stopped at a bad line (`--strict`).
    stopped: bool,
}

/// Checks a piece into a batch of its own, then, in its turn, hands the batch over and
/// reports the bad lines. Returns the piece's buffer, to be read into again.
fn check(
    piece: Piece,
    args: &SendArgs,
    sender: &Sender,
    dry: Option<&DryRun>,
    order: &Order,
    watch: &Watch,
) -> Vec<u8> {
    let mut batch = line_batch(args, sender);
    let mut checked = Checked::default();
    let bytes = &piece.buf[piece.range.clone()];
    match piece.kind {
        Kind::Lines | Kind::Last => {
            let mut refused = Vec::new();
            let seen = batch.push_lines(bytes, |index, line, err| {
                refused.push((index as u64 + 1, report(line, &err)));
                !args.strict
            });
            checked.stopped = args.strict && !refused.is_empty();
            checked.lines = seen as u64;
            checked.read = (batch.len() + refused.len()) as u64;
            checked.refused = refused;
        }
        Kind::TooLong => {
            let err = Error::LineTooLong {
                len: READ_SIZE,
                max: graphyte::MAX_LINE_LEN,
            };
            checked.lines = 1;
            checked.read = 1;
            checked.refused.push((1, report(bytes, &err)));
            checked.stopped = args.strict;
        }
    }
    let mut turn = Next {
        turn: order.wait_for(piece.seq),
        order,
    };
    if !turn.turn.tally.stopped {
        hand_over(&mut turn.turn, checked, &mut batch, args, dry);
        watch.lines_read(turn.turn.tally.read);
    }
    drop(turn);
    piece.buf
}

/// Hands a checked piece's batch over (in a dry run, prints it) and reports its bad lines.
fn hand_over(
    turn: &mut Turn,
    checked: Checked,
    batch: &mut graphyte::LineBatch,
    args: &SendArgs,
    dry: Option<&DryRun>,
) {
    let outcome = batch.send();
    if let Some(dry) = dry {
        print_dry(args, dry);
    }
    for (number, reason) in &checked.refused {
        complain(format_args!("line {}: {reason}", turn.lines + number));
    }
    let tally = &mut turn.tally;
    tally.read += checked.read;
    tally.refused += checked.refused.len() as u64;
    tally.lost += outcome.lost as u64;
    if checked.stopped {
        let number = turn.lines + checked.lines;
        complain(format_args!(
            "--strict: stopped at line {number}; the lines before it were sent"
        ));
        tally.stopped = true;
    }
    if matches!(outcome.first_error, Some(Error::Closed)) {
        tally.stopped = true;
    }
    turn.lines += checked.lines;
}

/// What is wrong with a line, and the line (its start, if long), for a person.
fn report(line: &[u8], err: &Error) -> String {
    let shown = String::from_utf8_lossy(&line[..line.len().min(SHOWN)]);
    let more = if line.len() > SHOWN { "…" } else { "" };
    let reason = match err {
        _ if line.ends_with(b"\r") => {
            "ends in a carriage return (a Windows line ending? convert with dos2unix)".to_owned()
        }
        // Its message holds the whole line, shown anyway.
        Error::InvalidLine { reason, .. } => (*reason).to_owned(),
        _ => err.to_string(),
    };
    format!("{reason}: {shown:?}{more}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser as _;
    use graphyte::SendSocket;

    use super::*;
    use crate::args::{Cli, Command};

    /// A Carbon that takes nothing: each write waits until the test lets go of `held`.
    struct Stuck {
        held: channel::Receiver<()>,
    }

    impl SendSocket for Stuck {
        fn send(&mut self, _: &[u8]) -> io::Result<usize> {
            let _ = self.held.recv();
            Err(io::ErrorKind::TimedOut.into())
        }
    }

    /// Input that gives some lines, then stays open and quiet until the test lets go of
    /// `held` (`tail -f` of a quiet log).
    struct Quiet {
        lines: Vec<u8>,
        held: channel::Receiver<()>,
    }

    impl Read for Quiet {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.lines.is_empty() {
                let _ = self.held.recv();
                return Ok(0);
            }
            let n = self.lines.len().min(buf.len());
            buf[..n].copy_from_slice(&self.lines[..n]);
            self.lines.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn a_strict_stream_stopped_by_a_bad_line_ends_while_its_input_stays_open_and_quiet() {
        let cli = Cli::try_parse_from(["graphyte", "send", "-", "--strict", "-q"]).unwrap();
        let Some(Command::Send(args)) = cli.command else {
            panic!("not a send: {cli:?}")
        };
        let (hold, held) = channel::bounded::<()>(0);
        let dry = Sender::builder("unused").dry_run().unwrap();
        let sender = dry.sender().clone();
        let input = Quiet {
            lines: b"a.b 1 1700000000\nnot a line\n".to_vec(),
            held,
        };
        let (done, ended) = channel::bounded(1);
        thread::spawn(move || {
            let _ = done.send(run_on(input, &args, &sender, Some(&dry)));
        });
        let status = ended.recv_timeout(Duration::from_secs(20));
        drop(hold);
        assert_eq!(status, Ok(Status::Incomplete), "--strict stopped at line 2");
    }

    #[test]
    fn a_stream_that_gave_up_ends_while_its_input_stays_open_and_quiet() {
        let cli = Cli::try_parse_from(["graphyte", "send", "-", "--timeout", "1", "-q"]).unwrap();
        let Some(Command::Send(args)) = cli.command else {
            panic!("not a send: {cli:?}")
        };
        let (hold, held) = channel::bounded::<()>(0);
        let sender = Sender::builder("unused")
            .socket(Stuck { held: held.clone() })
            .build()
            .unwrap();
        let input = Quiet {
            lines: b"a.b 1 1700000000\nc.d 2 1700000000\n".to_vec(),
            held,
        };
        let (done, ended) = channel::bounded(1);
        thread::spawn(move || {
            let _ = done.send(run_on(input, &args, &sender, None));
        });
        let status = ended.recv_timeout(Duration::from_secs(20));
        drop(hold);
        assert_eq!(
            status,
            Ok(Status::Incomplete),
            "the stream gave up after --timeout 1 with nothing delivered"
        );
    }

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
        let fresh = || vec![0u8; READ_SIZE];
        read_all(&mut Trickle(input, step), fresh, |kind, buf, range| {
            let bytes = &buf[range];
            out.push(match kind {
                Kind::Lines => format!("lines {}", String::from_utf8_lossy(bytes)),
                Kind::Last => format!("last {}", String::from_utf8_lossy(bytes)),
                Kind::TooLong => format!("too long {}", bytes.len()),
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
