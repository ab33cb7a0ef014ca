//! The command line: `graphyte send …`, the bare `graphyte NAME VALUE` of Python graphyte,
//! `graphyte completions SHELL`, and with the `render` feature the subcommands that read from
//! graphite-web (`render`, `find`, `tags`, `event`: see `read.rs`).

use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

#[cfg(feature = "render")]
use crate::read::ReadCommand;

const SEND_EXAMPLES: &str = "\
Examples:
  graphyte send app.deploys 1                      one metric, stamped now, to localhost:2003
  graphyte app.deploys 1 -s carbon.example.com     the same, as Python graphyte spells it
  graphyte send app.queue.depth 42 --tag queue=mail --prefix prod -t 1700000000
  graphyte send app.up 1 --protocol pickle -s carbon.example.com      (port 2004)
  graphyte send app.up 1 -u                        over UDP
  graphyte send app.up 1 --dry-run                 print the bytes, send nothing
  some-command | graphyte send -                   lines 'name[;tags] value [timestamp]' from stdin
  graphyte send - --strict < metrics.txt           stop at the first bad line

Stream mode (NAME is '-'): each line of stdin is checked and forwarded byte for byte (a
timestamp is added where a line has none; --prefix and --tag rewrite the path). A bad line
is reported with its number and skipped, or with --strict ends the run. A summary goes to
stderr at the end unless --quiet.

Exit status: 0 all sent, 1 some metrics refused or not delivered, 2 usage error,
3 could not connect within --timeout.";

/// Send metrics to Graphite (Carbon).
///
/// `graphyte NAME VALUE [OPTIONS]` is short for `graphyte send NAME VALUE [OPTIONS]`.
#[derive(Debug, Parser)]
#[command(
    name = "graphyte",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_precedence_over_arg = true,
    after_help = SEND_EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub send: SendArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send one metric, or a stream of lines from stdin ('-')
    #[command(after_help = SEND_EXAMPLES)]
    Send(SendArgs),
    #[cfg(feature = "render")]
    #[command(flatten)]
    Read(ReadCommand),
    /// Print shell completions for graphyte
    #[command(after_help = "\
Examples:
  graphyte completions bash > /etc/bash_completion.d/graphyte
  graphyte completions zsh > \"${fpath[1]}/_graphyte\"
  graphyte completions fish > ~/.config/fish/completions/graphyte.fish")]
    Completions {
        /// The shell to write completions for
        shell: Shell,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Plaintext lines over TCP (port 2003)
    Tcp,
    /// Plaintext lines in UDP datagrams (port 2003)
    Udp,
    /// Carbon's pickle protocol over TCP (port 2004)
    Pickle,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Metric name (path), e.g. app.requests.ok; '-' reads lines from stdin
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Value: a decimal number, sent as written (42 stays 42)
    #[arg(value_name = "VALUE", allow_hyphen_values = true)]
    pub value: Option<String>,

    /// Carbon host
    #[arg(short, long, env = "GRAPHITE_HOST", default_value = "localhost")]
    pub server: String,

    /// Carbon port [default: 2003, or 2004 for pickle]
    #[arg(short, long, env = "GRAPHITE_PORT")]
    pub port: Option<u16>,

    /// Wire protocol
    #[arg(long, value_enum, default_value_t = Protocol::Tcp, conflicts_with = "udp")]
    pub protocol: Protocol,

    /// Send over UDP (same as --protocol udp)
    #[arg(short, long)]
    pub udp: bool,

    /// Put PREFIX. in front of every metric name
    #[arg(long)]
    pub prefix: Option<String>,

    /// Unix time in seconds for the metric (stream mode: for lines without one) [default: now]
    #[arg(short, long, value_parser = parse_timestamp, allow_hyphen_values = true)]
    pub timestamp: Option<f64>,

    /// A tag KEY=VALUE added to every metric (repeat for more)
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,

    /// Seconds to wait for Carbon: to connect, for each write, and to deliver at the end
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    pub timeout: Duration,

    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,

    /// Print the exact bytes that would be sent (pickle: a readable rendering of each
    /// frame), and send nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Stream mode: stop at the first bad line (exit status 1) instead of skipping it
    #[arg(long)]
    pub strict: bool,
}

impl SendArgs {
    pub fn protocol(&self) -> Protocol {
        if self.udp {
            Protocol::Udp
        } else {
            self.protocol
        }
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.protocol() {
            Protocol::Pickle => graphyte::Protocol::Pickle.default_port(),
            Protocol::Tcp | Protocol::Udp => graphyte::Protocol::Plaintext.default_port(),
        })
    }
}

/// What to do, from the command line. Exits with status 2 on a usage error.
pub enum Task {
    Send(SendArgs),
    Completions(Shell),
    #[cfg(feature = "render")]
    Read(ReadCommand),
}

pub fn parse() -> Task {
    let cli = Cli::parse();
    let task = match cli.command {
        Some(Command::Send(send)) => Task::Send(send),
        Some(Command::Completions { shell }) => Task::Completions(shell),
        #[cfg(feature = "render")]
        Some(Command::Read(read)) => Task::Read(read),
        None => Task::Send(cli.send),
    };
    if let Task::Send(send) = &task {
        check_send(send);
    }
    task
}

/// What clap cannot say: NAME and VALUE go together, unless NAME is '-'.
fn check_send(send: &SendArgs) {
    match (send.name.as_deref(), &send.value) {
        (None, _) => {
            usage_error("a metric NAME and VALUE are needed, or '-' to read lines from stdin")
        }
        (Some("-"), Some(value)) => usage_error(&format!(
            "'-' reads lines from stdin and takes no VALUE (got '{value}')"
        )),
        (Some(name), None) if name != "-" => {
            usage_error(&format!("a VALUE is needed after the metric name '{name}'"))
        }
        _ => {}
    }
}

/// Prints a usage error the way clap does, and exits with status 2.
pub fn usage_error(message: &str) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::ValueValidation, message)
        .exit()
}

/// A usage error of the subcommand at `path` (such as `["event", "add"]`), with its usage.
#[cfg(feature = "render")]
pub fn usage_error_in(path: &[&str], message: &str) -> ! {
    let mut command = Cli::command();
    // Gives each subcommand its full name, `graphyte event add`, for its usage line.
    command.build();
    for name in path {
        match command.find_subcommand(name) {
            Some(sub) => command = sub.clone(),
            None => break,
        }
    }
    command
        .error(clap::error::ErrorKind::ValueValidation, message)
        .exit()
}

pub fn write_completions(shell: Shell) {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "graphyte",
        &mut std::io::stdout(),
    );
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        None => Err(format!("'{text}' is not KEY=VALUE")),
    }
}

pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() && secs <= 86_400.0 => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!(
            "'{text}' is not a number of seconds above 0 (at most a day)"
        )),
    }
}

fn parse_timestamp(text: &str) -> Result<f64, String> {
    let secs = text.parse::<f64>().ok().filter(|secs| secs.is_finite());
    match secs {
        Some(secs) if (1.0..4_294_967_296.0).contains(&secs) => Ok(secs),
        _ => Err(format!(
            "'{text}' is not a Unix time in seconds from 1 to 4294967295"
        )),
    }
}
