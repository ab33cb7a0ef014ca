//! `graphyte send`: the settings, the connection, one metric or the stream, and `--dry-run`.

use std::io::Write as _;
use std::time::Duration;

use graphyte::{
    Builder, DEFAULT_MAX_DATAGRAM, DryRun, Error, FullQueue, LineBatch, SendSocket, Sender,
    TcpSocket, Transport, UdpSocket,
};

use crate::args::{Protocol, SendArgs, usage_error};
use crate::{Status, complain, pickle_view, stream};

/// How often the stream's worker writes what it holds when lines come slowly.
const STREAM_INTERVAL: Duration = Duration::from_millis(200);

/// Queue slots of the stream's sender: each holds one read's worth of lines (up to 256 KiB),
/// so at most a few MiB wait for Carbon.
const STREAM_QUEUE: usize = 16;

pub fn run(args: &SendArgs) -> Status {
    // Settings are checked (and a usage error reported) before anything touches the network.
    let dry = match builder(args).dry_run() {
        Ok(dry) => dry,
        Err(err) => usage_error(&settings_error(&err)),
    };
    let stream = args.name.as_deref() == Some("-");
    if args.dry_run {
        return if stream {
            stream::run(args, dry.sender(), Some(&dry))
        } else {
            one(args, dry.sender(), Some(&dry))
        };
    }
    drop(dry);
    let socket = match connect(args) {
        Ok(socket) => socket,
        Err(err) => {
            complain(format_args!(
                "cannot connect to {}:{} over {} within {:?}: {err}; check --server and --port \
                 (or GRAPHITE_HOST and GRAPHITE_PORT), and that Carbon is running",
                args.server,
                args.port(),
                protocol_name(args.protocol()),
                args.timeout,
            ));
            return Status::Unreachable;
        }
    };
    let builder = builder(args).socket(socket);
    let built = if stream {
        builder
            .interval(STREAM_INTERVAL)
            .full_queue(FullQueue::Block)
            .queue_capacity(STREAM_QUEUE)
            .build()
    } else {
        builder.synchronous().build()
    };
    let sender = match built {
        Ok(sender) => sender,
        Err(err) => usage_error(&settings_error(&err)),
    };
    if stream {
        stream::run(args, &sender, None)
    } else {
        one(args, &sender, None)
    }
}

/// The sender's settings from the command line; the socket comes later.
fn builder(args: &SendArgs) -> Builder {
    let mut builder = Sender::builder(&args.server)
        .port(args.port())
        .timeout(args.timeout);
    builder = match args.protocol() {
        Protocol::Tcp => builder,
        Protocol::Udp => builder.transport(Transport::Udp),
        Protocol::Pickle => builder.protocol(graphyte::Protocol::Pickle),
    };
    if let Some(prefix) = &args.prefix {
        builder = builder.prefix(prefix);
    }
    for (key, value) in &args.tags {
        builder = builder.tag(key, value);
    }
    builder
}

fn settings_error(err: &Error) -> String {
    match err {
        Error::InvalidName { .. } => format!("--prefix: {err}"),
        Error::InvalidTag { .. } => format!("--tag: {err}"),
        _ => err.to_string(),
    }
}

/// Opens the connection now, with the library's own socket, so that an unreachable Carbon
/// is reported at once (exit status 3) rather than after reading the input.
fn connect(args: &SendArgs) -> std::io::Result<Box<dyn SendSocket>> {
    let (host, port) = (args.server.as_str(), args.port());
    let mut socket: Box<dyn SendSocket> = match args.protocol() {
        Protocol::Tcp | Protocol::Pickle => Box::new(TcpSocket::new(host, port, args.timeout)),
        Protocol::Udp => Box::new(UdpSocket::new(host, port, DEFAULT_MAX_DATAGRAM)),
    };
    socket.connect()?;
    Ok(socket)
}

pub fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Pickle => "pickle (TCP)",
    }
}

/// A new line batch for the sender, with `--timestamp` for lines that have none.
pub fn line_batch(args: &SendArgs, sender: &Sender) -> LineBatch {
    let mut batch = sender.line_batch();
    if let Some(secs) = args.timestamp
        && let Err(err) = batch.default_timestamp(secs)
    {
        usage_error(&format!("--timestamp: {err}"));
    }
    batch
}

/// One metric: NAME VALUE, checked as a line (so the value goes out as written).
fn one(args: &SendArgs, sender: &Sender, dry: Option<&DryRun>) -> Status {
    let name = args.name.as_deref().unwrap_or_default();
    let value = args.value.as_deref().unwrap_or_default();
    // Each must stay one field of the line.
    for (what, text) in [("name", name), ("value", value)] {
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            complain(format_args!(
                "refused: the {what} {text:?} is empty or contains whitespace or a control character"
            ));
            return Status::Incomplete;
        }
    }
    let mut batch = line_batch(args, sender);
    if let Err(err) = batch.push(format!("{name} {value}").as_bytes()) {
        complain(format_args!("refused: {err}"));
        return Status::Incomplete;
    }
    let outcome = batch.send();
    if let Some(err) = outcome.first_error {
        complain(format_args!("not sent: {err}"));
        return Status::Incomplete;
    }
    if let Some(dry) = dry {
        print_dry(args, dry);
    } else if !args.quiet {
        complain(format_args!(
            "sent 1 metric to {}:{} over {}",
            args.server,
            args.port(),
            protocol_name(args.protocol())
        ));
    }
    Status::Sent
}

/// Writes what a dry run kept to stdout: plaintext as is, pickle frames rendered.
pub fn print_dry(args: &SendArgs, dry: &DryRun) {
    let mut stdout = std::io::stdout().lock();
    let written = match args.protocol() {
        Protocol::Pickle => dry
            .take_frames()
            .iter()
            .try_for_each(|frame| stdout.write_all(pickle_view::render(frame).as_bytes())),
        Protocol::Tcp | Protocol::Udp => stdout.write_all(&dry.take()),
    };
    if let Err(err) = written.and_then(|()| stdout.flush()) {
        complain(format_args!("writing to stdout: {err}"));
        std::process::exit(Status::Incomplete as i32);
    }
}
