//! `graphyte`: send metrics to Graphite (Carbon) from the command line, one at a time or as
//! a stream of lines from stdin. Built with the `cli` feature; it uses the library as any
//! program would.

mod args;
mod pickle_view;
mod send;
mod stream;
mod watch;

use std::process::ExitCode;

/// How a run ended: the process's exit status. A usage error exits with 2 where it is found
/// (`args::usage_error`, or clap itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything was sent.
    Sent = 0,
    /// Some metrics were refused or not delivered.
    Incomplete = 1,
    /// Carbon could not be reached within the timeout.
    Unreachable = 3,
}

fn main() -> ExitCode {
    let status = match args::parse() {
        args::Task::Completions(shell) => {
            args::write_completions(shell);
            Status::Sent
        }
        args::Task::Send(send) => send::run(&send),
    };
    ExitCode::from(status as u8)
}

/// Prints an error line on stderr: `graphyte: what went wrong`.
pub fn complain(message: impl std::fmt::Display) {
    say(format_args!("graphyte: {message}\n"));
}

/// Writes to stderr, never panicking: a closed stderr (`graphyte … 2>&1 | head`) must not
/// stop the run, and `eprint!` panics on one.
pub fn say(text: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_fmt(text).and_then(|()| stderr.flush());
}
