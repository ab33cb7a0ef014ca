//! What watches a stream while it runs: the live progress line on a terminal, and the
//! watchdog that gives up when Carbon takes nothing for `--timeout` (the stream waits for
//! room in the sender's queue, so without it a dead Carbon would hold it forever).

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel as channel;
use graphyte::Sender;

use crate::say;

use crate::args::SendArgs;

/// How often the progress line is redrawn and Carbon's progress looked at.
const TICK: Duration = Duration::from_millis(250);

/// How long a shutdown by the watchdog may take: the stream is given up already.
const GIVE_UP_TIMEOUT: Duration = Duration::from_millis(100);

pub struct Watch {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    gave_up: channel::Receiver<()>,
}

struct Shared {
    read: AtomicU64,
    gave_up: AtomicBool,
    /// Dropped when the watchdog gives up: its receivers see the channel closed.
    give_up: Mutex<Option<channel::Sender<()>>>,
    stop: Mutex<bool>,
    stopped: Condvar,
}

impl Watch {
    /// Starts watching `sender`. The progress line is drawn only when stderr is a terminal
    /// and `--quiet` is off; the watchdog runs only when `live` (not in a dry run).
    pub fn start(sender: &Sender, args: &SendArgs, live: bool) -> Watch {
        let (give_up, gave_up) = channel::bounded(0);
        let shared = Arc::new(Shared {
            read: AtomicU64::new(0),
            gave_up: AtomicBool::new(false),
            give_up: Mutex::new(Some(give_up)),
            stop: Mutex::new(false),
            stopped: Condvar::new(),
        });
        let progress = !args.quiet && std::io::stderr().is_terminal();
        let thread = (progress || live).then(|| {
            let shared = Arc::clone(&shared);
            let sender = sender.clone();
            let timeout = args.timeout;
            thread::spawn(move || watch(&shared, &sender, progress, live.then_some(timeout)))
        });
        Watch {
            shared,
            thread,
            gave_up,
        }
    }

    /// A channel that closes when the watchdog gives the stream up, and never carries a
    /// message.
    pub fn gave_up(&self) -> channel::Receiver<()> {
        self.gave_up.clone()
    }

    /// Counts the lines read so far.
    pub fn lines_read(&self, lines: u64) {
        self.shared.read.store(lines, Ordering::Relaxed);
    }

    /// Stops watching (and clears the progress line); returns whether the watchdog gave the
    /// stream up.
    pub fn stop(mut self) -> bool {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.stopped.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.gave_up.load(Ordering::Relaxed)
    }
}

fn watch(shared: &Shared, sender: &Sender, progress: bool, timeout: Option<Duration>) {
    let started = Instant::now();
    let mut last_sent = (0, Instant::now());
    let mut drawn = false;
    let mut stop = shared.stop.lock().unwrap_or_else(|e| e.into_inner());
    while !*stop {
        stop = shared
            .stopped
            .wait_timeout(stop, TICK)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        if *stop {
            break;
        }
        if progress {
            let read = shared.read.load(Ordering::Relaxed);
            let rate = read as f64 / started.elapsed().as_secs_f64().max(1e-3);
            say(format_args!(
                "\r\x1b[2K{read} lines, {} lines/s",
                rate.round() as u64
            ));
            drawn = true;
        }
        if let Some(timeout) = timeout {
            let stats = sender.stats();
            let waiting = stats.queued.saturating_sub(stats.sent + stats.failed);
            if stats.sent != last_sent.0 || waiting == 0 {
                last_sent = (stats.sent, Instant::now());
            } else if last_sent.1.elapsed() >= timeout && !shared.gave_up.load(Ordering::Relaxed) {
                shared.gave_up.store(true, Ordering::Relaxed);
                // Frees a send waiting for room; the stream sees the sender closed and stops.
                let _ = sender.shutdown(GIVE_UP_TIMEOUT);
                drop(
                    shared
                        .give_up
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take(),
                );
            }
        }
    }
    if drawn {
        say(format_args!("\r\x1b[2K"));
    }
}
