//! `graphyte`: send metrics to Graphite (Carbon) from the command line, one at a time or as
//! a stream of lines from stdin, and (with the `render` feature too) read them back from
//! graphite-web. Built with the `cli` feature; it uses the library as any program would.

mod args;
#[cfg(feature = "render")]
mod chart;
mod pickle_view;
#[cfg(feature = "render")]
mod read;
mod send;
mod stream;
mod watch;

use std::process::ExitCode;

/// How a run ended: the process's exit status. A usage error exits with 2 where it is found
/// (`args::usage_error`, or clap itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything was sent (or read back).
    Sent = 0,
    /// Some metrics were refused or not delivered; or graphite-web answered an error, refused
    /// the credentials, or sent something unreadable.
    Incomplete = 1,
    /// Carbon (or graphite-web) could not be reached within the timeout.
    Unreachable = 3,
}

fn main() -> ExitCode {
    let status = match args::parse() {
        args::Task::Completions(shell) => {
            args::write_completions(shell);
            Status::Sent
        }
        args::Task::Send(send) => send::run(&send),
        #[cfg(feature = "render")]
        args::Task::Read(command) => read::run(&command),
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
