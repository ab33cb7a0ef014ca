//! Reading back from graphite-web (features `cli` and `render`): `graphyte render`, `find`,
//! `tags` and `event`, over the library's [`Client`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use graphyte::render::{
    Client, CsvRow, Error, Event, NewEvent, Node, Query, Series, TagValue, Time,
};

use crate::args::{parse_seconds, usage_error_in};
use crate::{Status, chart, complain};

const RENDER_EXAMPLES: &str = "\
Examples:
  export GRAPHITE_URL=http://graphite.example.com:8080
  graphyte render app.requests                    the last 24 hours, as a table
  graphyte render 'app.*.requests' --from -1h --format chart
  graphyte render 'sumSeries(app.*.errors)' --from -2days --until -1days --format csv
  graphyte render app.requests --from -30min --max-points 100 --format json
  graphyte render \"seriesByTag('env=prod')\" --from -1h
  graphyte render app.requests --from -7d --png week.png --width 1200 --height 400

Times (--from, --until) are graphite-web's: now, -30s, -30min, -2h, -2days, -1w, -3mon,
-1y, Unix seconds, HH:MM_YYYYMMDD, YYYYMMDD, MM/DD/YY. Minutes are 'min' ('-5m' is refused).
Tables and CSV show times in UTC.

The server: --url or GRAPHITE_URL; credentials --user and --password, or better,
GRAPHITE_USER and GRAPHITE_PASSWORD (a password on the command line shows in ps and in shell
history).

Exit status: 0 done, 1 graphite-web answered an error, refused the credentials or sent
something unreadable, 2 usage error, 3 could not connect or no answer within --timeout.";

const FIND_EXAMPLES: &str = "\
Examples:
  graphyte find '*'                               the top of the metric tree
  graphyte find 'app.*'                           what is under app: app.server1. (a branch), app.up
  graphyte find 'app.server[12].req*' --url http://graphite:8080

The server: --url or GRAPHITE_URL; credentials GRAPHITE_USER and GRAPHITE_PASSWORD.

Exit status: 0 done, 1 graphite-web answered an error, refused the credentials or sent
something unreadable, 2 usage error, 3 could not connect or no answer within --timeout.";

const TAGS_EXAMPLES: &str = "\
Examples:
  graphyte tags                                   every tag, one per line
  graphyte tags env                               env's values, each with its count of series:
                                                  prod<TAB>12

The server: --url or GRAPHITE_URL; credentials GRAPHITE_USER and GRAPHITE_PASSWORD.

Exit status: 0 done, 1 graphite-web answered an error, refused the credentials or sent
something unreadable, 2 usage error, 3 could not connect or no answer within --timeout.";

const EVENT_EXAMPLES: &str = "\
Examples:
  graphyte event add 'deploy app v2.1' --tag deploy --tag app --data 'by ci #1234'
  graphyte event add 'db failover' --tag db --when 1700000000
  graphyte event list                             the last day's events
  graphyte event list --from -7d --tag deploy     a week of deploys

The server: --url or GRAPHITE_URL; credentials GRAPHITE_USER and GRAPHITE_PASSWORD.

Exit status: 0 done, 1 graphite-web answered an error, refused the credentials or sent
something unreadable, 2 usage error, 3 could not connect or no answer within --timeout.";

const EVENT_ADD_EXAMPLES: &str = "\
Examples:
  graphyte event add 'deploy app v2.1' --tag deploy --tag app --data 'by ci #1234'
  graphyte event add 'db failover' --tag db --when 1700000000

Prints nothing when the event is recorded.

Exit status: 0 done, 1 graphite-web answered an error, refused the credentials or sent
something unreadable, 2 usage error, 3 could not connect or no answer within --timeout.";

const EVENT_LIST_EXAMPLES: &str = "\
Examples:
  graphyte event list                             the last day's events
  graphyte event list --from -7d --tag deploy     a week of deploys
  graphyte event list --from 20261101 --until 20261201

One line per event: its time (UTC), what, [its tags], its data.

Exit status: 0 done, 1 graphite-web answered an error, refused the credentials or sent
something unreadable, 2 usage error, 3 could not connect or no answer within --timeout.";

/// The subcommands that read from graphite-web.
#[derive(Debug, Subcommand)]
pub enum ReadCommand {
    /// Read series from graphite-web: a table, CSV, JSON, a chart in the terminal, or a PNG
    #[command(after_help = RENDER_EXAMPLES)]
    Render(RenderArgs),
    /// List the nodes of the metric tree a glob matches (a branch ends with '.')
    #[command(after_help = FIND_EXAMPLES)]
    Find(FindArgs),
    /// List graphite-web's tags, or the values of one tag with their counts of series
    #[command(after_help = TAGS_EXAMPLES)]
    Tags(TagsArgs),
    /// Record an event (a deploy marker, say), or list events
    #[command(after_help = EVENT_EXAMPLES)]
    Event(EventArgs),
}

/// Where graphite-web is, and how to talk to it: the options of every read subcommand.
/// (`Debug` is written by hand: it never shows the password.)
#[derive(Args)]
#[command(next_help_heading = "graphite-web")]
pub struct WebArgs {
    /// graphite-web's base URL, e.g. http://graphite.example.com:8080
    #[arg(long, env = "GRAPHITE_URL", value_name = "URL", hide_env_values = true)]
    pub url: Option<String>,

    /// User name for HTTP basic authentication
    #[arg(long, env = "GRAPHITE_USER", value_name = "USER")]
    pub user: Option<String>,

    /// Password for HTTP basic authentication. Prefer the GRAPHITE_PASSWORD environment
    /// variable: a password on the command line shows in ps and in shell history
    #[arg(
        long,
        env = "GRAPHITE_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub password: Option<String>,

    /// Seconds to wait for each of graphite-web's answers, whole
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub timeout: Duration,
}

impl std::fmt::Debug for WebArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebArgs")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A column of UTC times, then a column per series
    Table,
    /// name,time,value rows (times in UTC)
    Csv,
    /// graphite-web's own JSON
    Json,
    /// One line per series: its name, a sparkline, its min, max and last value
    Chart,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// What to read: a path, a glob (app.*.requests) or any Graphite function
    /// (sumSeries(app.*.errors)); repeat for more series
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,

    /// From when (exclusive) [graphite-web's default: -24h]
    #[arg(long, value_name = "TIME", value_parser = parse_time, allow_hyphen_values = true)]
    pub from: Option<Time>,

    /// Until when [default: now]
    #[arg(long, value_name = "TIME", value_parser = parse_time, allow_hyphen_values = true)]
    pub until: Option<Time>,

    /// At most N points per series: graphite-web averages neighbouring points to fit
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_points: Option<u32>,

    /// How to print the series
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Save graphite-web's own graph of the series, a PNG image, to FILE instead
    #[arg(long, value_name = "FILE", conflicts_with = "format")]
    pub png: Option<PathBuf>,

    /// The PNG's width in pixels [default: 800]
    #[arg(long, value_name = "PIXELS", requires = "png", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub width: Option<u32>,

    /// The PNG's height in pixels [default: 600]
    #[arg(long, value_name = "PIXELS", requires = "png", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub height: Option<u32>,

    #[command(flatten)]
    pub web: WebArgs,
}

#[derive(Debug, Args)]
pub struct FindArgs {
    /// A path or glob of the metric tree: '*', 'app.*', 'app.server[12].req*'
    #[arg(value_name = "GLOB")]
    pub glob: String,

    #[command(flatten)]
    pub web: WebArgs,
}

#[derive(Debug, Args)]
pub struct TagsArgs {
    /// A tag: list its values, with how many series carry each, instead of the tags
    #[arg(value_name = "TAG")]
    pub tag: Option<String>,

    #[command(flatten)]
    pub web: WebArgs,
}

#[derive(Debug, Args)]
pub struct EventArgs {
    #[command(subcommand)]
    pub command: EventCommand,
}

#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Record an event
    #[command(after_help = EVENT_ADD_EXAMPLES)]
    Add(EventAddArgs),
    /// List events, one per line
    #[command(after_help = EVENT_LIST_EXAMPLES)]
    List(EventListArgs),
}

#[derive(Debug, Args)]
pub struct EventAddArgs {
    /// What happened, in a few words
    #[arg(value_name = "WHAT")]
    pub what: String,

    /// A tag (repeat for more): events are selected by their tags
    #[arg(long = "tag", value_name = "TAG", value_parser = parse_event_tag)]
    pub tags: Vec<String>,

    /// Anything more: a description, a link
    #[arg(long, value_name = "TEXT")]
    pub data: Option<String>,

    /// When it happened, in Unix seconds [default: when graphite-web records it]
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub when: Option<u32>,

    #[command(flatten)]
    pub web: WebArgs,
}

#[derive(Debug, Args)]
pub struct EventListArgs {
    /// From when
    #[arg(long, value_name = "TIME", default_value = "-1d", value_parser = parse_time, allow_hyphen_values = true)]
    pub from: Time,

    /// Until when
    #[arg(long, value_name = "TIME", default_value = "now", value_parser = parse_time, allow_hyphen_values = true)]
    pub until: Time,

    /// Only events with this tag (repeat: with every one of them)
    #[arg(long = "tag", value_name = "TAG", value_parser = parse_event_tag)]
    pub tags: Vec<String>,

    #[command(flatten)]
    pub web: WebArgs,
}

fn parse_time(text: &str) -> Result<Time, String> {
    text.parse::<Time>().map_err(|err| err.to_string())
}

/// An event's tag: graphite-web splits tags at whitespace and commas.
fn parse_event_tag(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == ',') {
        Err(format!(
            "'{text}' is not an event tag: one word, without whitespace or commas"
        ))
    } else {
        Ok(text.to_owned())
    }
}

pub fn run(command: &ReadCommand) -> Status {
    match command {
        ReadCommand::Render(args) => render(args),
        ReadCommand::Find(args) => find(args),
        ReadCommand::Tags(args) => tags(args),
        ReadCommand::Event(EventArgs {
            command: EventCommand::Add(args),
        }) => event_add(args),
        ReadCommand::Event(EventArgs {
            command: EventCommand::List(args),
        }) => event_list(args),
    }
}

/// The client of `web`'s graphite-web; a usage error (for the subcommand at `path`) when
/// there is no URL or it cannot be used.
fn client(web: &WebArgs, path: &[&str]) -> Client {
    let Some(url) = web.url.as_deref().filter(|url| !url.is_empty()) else {
        usage_error_in(
            path,
            "graphite-web's URL is needed: give --url or set GRAPHITE_URL \
             (e.g. http://graphite.example.com:8080)",
        )
    };
    let mut builder = Client::builder(url).timeout(web.timeout);
    match (&web.user, &web.password) {
        (Some(user), password) => {
            builder = builder.basic_auth(user, password.as_deref().unwrap_or_default());
        }
        (None, Some(_)) => usage_error_in(
            path,
            "a password needs a user: give --user or set GRAPHITE_USER",
        ),
        (None, None) => {}
    }
    match builder.build() {
        Ok(client) => client,
        Err(err) => usage_error_in(path, &format!("--url: {err}")),
    }
}

/// Reports a failed request: one line, and the exit status it calls for.
fn failed(err: &Error, path: &[&str]) -> Status {
    match err {
        Error::Config(message) => usage_error_in(path, message),
        Error::Connect { .. } | Error::Timeout { .. } => {
            complain(err);
            Status::Unreachable
        }
        _ => {
            complain(err);
            Status::Incomplete
        }
    }
}

/// Writes `text` to stdout. A closed stdout (`graphyte find '*' | head`) ends the run
/// quietly; any other write error is reported.
fn print(text: &str) -> Status {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Status::Sent,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Status::Sent,
        Err(err) => {
            complain(format_args!("writing to stdout: {err}"));
            Status::Incomplete
        }
    }
}

fn render(args: &RenderArgs) -> Status {
    const PATH: &[&str] = &["render"];
    let client = client(&args.web, PATH);
    let mut targets = args.targets.iter();
    let Some(first) = targets.next() else {
        usage_error_in(PATH, "a TARGET is needed")
    };
    let mut query = targets.fold(Query::new(first), |query, target| query.target(target));
    if let Some(from) = &args.from {
        query = query.from(from.clone());
    }
    if let Some(until) = &args.until {
        query = query.until(until.clone());
    }
    if let Some(points) = args.max_points {
        query = query.max_data_points(points);
    }
    if let Some(file) = &args.png {
        let (width, height) = (args.width.unwrap_or(800), args.height.unwrap_or(600));
        return match client.render_png(&query, width, height) {
            Ok(png) => match std::fs::write(file, &png) {
                Ok(()) => {
                    complain(format_args!(
                        "wrote {} ({} bytes)",
                        file.display(),
                        png.len()
                    ));
                    Status::Sent
                }
                Err(err) => {
                    complain(format_args!("writing {}: {err}", file.display()));
                    Status::Incomplete
                }
            },
            Err(err) => failed(&err, PATH),
        };
    }
    let printed = match args.format {
        Format::Csv => client.render_csv(&query).map(|rows| csv(&rows)),
        Format::Json => client.render(&query).map(|series| json(&series)),
        Format::Table => client
            .render(&query)
            .map(|series| unless_empty(&printable(series), table)),
        Format::Chart => client
            .render(&query)
            .map(|series| unless_empty(&printable(series), |s| chart::chart(s, terminal_width()))),
    };
    match printed {
        Ok(text) => print(&text),
        Err(err) => failed(&err, PATH),
    }
}

/// The series with their names and tags fit for a terminal: a control character (an escape
/// sequence, say) from the server is shown escaped, not obeyed.
fn printable(series: Vec<Series>) -> Vec<Series> {
    series
        .into_iter()
        .map(|s| Series {
            name: one_line(&s.name),
            tags: s
                .tags
                .iter()
                .map(|(tag, value)| (one_line(tag), one_line(value)))
                .collect(),
            points: s.points,
        })
        .collect()
}

/// `draw(series)`; nothing, and a note on stderr, when the targets matched no series.
fn unless_empty(series: &[Series], draw: impl FnOnce(&[Series]) -> String) -> String {
    if series.is_empty() {
        complain("no series: the targets match nothing in that time range");
        String::new()
    } else {
        draw(series)
    }
}

/// The terminal's width, from COLUMNS (which shells set), else 80.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|columns| columns.trim().parse::<usize>().ok())
        .filter(|&columns| columns > 0)
        .unwrap_or(chart::DEFAULT_WIDTH)
}

/// The width of a time as [`utc`] writes it.
const UTC_WIDTH: usize = "YYYY-MM-DD HH:MM:SS".len();

/// A column of UTC times, then one per series headed by its name, values right-aligned; a
/// row per timestamp of any series, an empty cell where a series has no value.
fn table(series: &[Series]) -> String {
    let times: BTreeSet<u32> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(t, _)| t))
        .collect();
    let columns: Vec<BTreeMap<u32, String>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter_map(|&(t, v)| Some((t, number(v?))))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = series
        .iter()
        .zip(&columns)
        .map(|(s, cells)| {
            cells
                .values()
                .map(|cell| cell.len())
                .chain([chart::columns(&s.name)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = chart::pad("time", UTC_WIDTH);
    for (s, &width) in series.iter().zip(&widths) {
        line.push_str("  ");
        line.push_str(&" ".repeat(width.saturating_sub(chart::columns(&s.name))));
        line.push_str(&s.name);
    }
    out.push_str(line.trim_end());
    out.push('\n');
    for time in times {
        let mut line = utc(i64::from(time));
        for (cells, &width) in columns.iter().zip(&widths) {
            let cell = cells.get(&time).map_or("", String::as_str);
            let _ = write!(line, "  {cell:>width$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `name,YYYY-MM-DD HH:MM:SS,value` rows, as graphite-web writes them (times in UTC).
fn csv(rows: &[CsvRow]) -> String {
    let mut out = String::new();
    for row in rows {
        let name = if row.name.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", row.name.replace('"', "\"\""))
        } else {
            row.name.clone()
        };
        let value = row.value.map(number).unwrap_or_default();
        let _ = writeln!(out, "{name},{},{value}", utc(i64::from(row.timestamp)));
    }
    out
}

/// The series as graphite-web's `format=json` writes them, infinities as `1e9999`.
fn json(series: &[Series]) -> String {
    let string = |text: &str| serde_json::Value::from(text).to_string();
    let mut out = String::from("[");
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{{\"target\": {}, \"tags\": {{", string(&s.name));
        for (j, (tag, value)) in s.tags.iter().enumerate() {
            let sep = if j > 0 { ", " } else { "" };
            let _ = write!(out, "{sep}{}: {}", string(tag), string(value));
        }
        out.push_str("}, \"datapoints\": [");
        for (j, &(time, value)) in s.points.iter().enumerate() {
            let sep = if j > 0 { ", " } else { "" };
            let value = match value {
                Some(v) if v == f64::INFINITY => "1e9999".to_owned(),
                Some(v) if v == f64::NEG_INFINITY => "-1e9999".to_owned(),
                Some(v) if v.is_finite() => format!("{v:?}"),
                _ => "null".to_owned(),
            };
            let _ = write!(out, "{sep}[{value}, {time}]");
        }
        out.push_str("]}");
    }
    out.push_str("]\n");
    out
}

fn find(args: &FindArgs) -> Status {
    const PATH: &[&str] = &["find"];
    match client(&args.web, PATH).find(&args.glob) {
        Ok(nodes) => print(&nodes.iter().map(node_line).collect::<String>()),
        Err(err) => failed(&err, PATH),
    }
}

/// A node's path, with a `.` after a branch's.
fn node_line(node: &Node) -> String {
    let path = one_line(&node.path);
    if node.leaf {
        format!("{path}\n")
    } else {
        format!("{path}.\n")
    }
}

fn tags(args: &TagsArgs) -> Status {
    const PATH: &[&str] = &["tags"];
    let client = client(&args.web, PATH);
    let printed = match &args.tag {
        None => client.tags().map(|tags| {
            tags.iter()
                .map(|tag| format!("{}\n", one_line(tag)))
                .collect::<String>()
        }),
        Some(tag) => client.tag_values(tag).map(|values| {
            values
                .iter()
                .map(|TagValue { value, count }| format!("{}\t{count}\n", one_line(value)))
                .collect()
        }),
    };
    match printed {
        Ok(text) => print(&text),
        Err(err) => failed(&err, PATH),
    }
}

fn event_add(args: &EventAddArgs) -> Status {
    const PATH: &[&str] = &["event", "add"];
    if args.what.trim().is_empty() {
        usage_error_in(PATH, "WHAT is empty: say in a few words what happened");
    }
    let client = client(&args.web, PATH);
    let mut event = NewEvent::new(&args.what);
    for tag in &args.tags {
        event = event.tag(tag);
    }
    if let Some(data) = &args.data {
        event = event.data(data);
    }
    if let Some(when) = args.when {
        event = event.when(when);
    }
    match client.add_event(&event) {
        Ok(()) => Status::Sent,
        Err(err) => failed(&err, PATH),
    }
}

fn event_list(args: &EventListArgs) -> Status {
    const PATH: &[&str] = &["event", "list"];
    let client = client(&args.web, PATH);
    let tags: Vec<&str> = args.tags.iter().map(String::as_str).collect();
    match client.events(args.from.clone(), args.until.clone(), &tags) {
        Ok(events) => print(&events.iter().map(event_line).collect::<String>()),
        Err(err) => failed(&err, PATH),
    }
}

/// `YYYY-MM-DD HH:MM:SS  what  [tag,tag]  data`, on one line whatever the event holds.
fn event_line(event: &Event) -> String {
    let when = if event.when.is_finite() {
        event.when.floor() as i64
    } else {
        0
    };
    let line = format!(
        "{}  {}  [{}]  {}",
        utc(when),
        one_line(&event.what),
        one_line(&event.tags.join(",")),
        one_line(&event.data)
    );
    format!("{}\n", line.trim_end())
}

/// `text` with its control characters (newlines, tabs) escaped, to stay on one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A value in Rust's shortest form, with an exponent when it is very large or very small
/// (`1e300`, not 301 digits).
fn number(value: f64) -> String {
    let size = value.abs();
    if size != 0.0 && size.is_finite() && !(1e-5..1e16).contains(&size) {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` in UTC.
fn utc(secs: i64) -> String {
    let (days, secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn very_large_or_small_values_are_written_with_an_exponent() {
        assert_eq!(number(1e300), "1e300");
        assert_eq!(number(-2.5e-9), "-2.5e-9");
        assert_eq!(number(123.25), "123.25");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(f64::INFINITY), "inf");
    }

    #[test]
    fn debug_of_the_options_never_shows_the_password() {
        let args = WebArgs {
            url: Some("http://h".into()),
            user: Some("reader".into()),
            password: Some("s3cret-pw".into()),
            timeout: Duration::from_secs(1),
        };
        let shown = format!("{args:?}");
        assert!(
            shown.contains("reader") && !shown.contains("s3cret-pw"),
            "{shown}"
        );
    }

    fn series(name: &str, points: &[(u32, Option<f64>)]) -> Series {
        Series {
            name: name.to_owned(),
            tags: [("name".to_owned(), name.to_owned())].into(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn utc_times_are_written_as_the_calendar_has_them() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc(1_709_208_000), "2024-02-29 12:00:00");
        assert_eq!(utc(i64::from(u32::MAX)), "2106-02-07 06:28:15");
        assert_eq!(utc(-1), "1969-12-31 23:59:59");
        assert_eq!(utc(951_868_800), "2000-03-01 00:00:00");
    }

    #[test]
    fn a_table_has_a_row_per_timestamp_of_any_series_and_empty_cells_for_no_value() {
        let a = series(
            "app.a",
            &[(1_700_000_000, Some(1.0)), (1_700_000_001, None)],
        );
        let b = series(
            "b",
            &[(1_700_000_001, Some(-2.5)), (1_700_000_002, Some(1e3))],
        );
        assert_eq!(
            table(&[a, b]),
            "time                 app.a     b\n\
             2023-11-14 22:13:20      1\n\
             2023-11-14 22:13:21         -2.5\n\
             2023-11-14 22:13:22         1000\n"
        );
    }

    #[test]
    fn csv_quotes_names_with_a_comma_or_a_quote() {
        let rows = [
            CsvRow {
                name: "a.b".into(),
                timestamp: 1_700_000_000,
                value: Some(42.0),
            },
            CsvRow {
                name: "sumSeries(a,\"b\")".into(),
                timestamp: 1_700_000_001,
                value: None,
            },
            CsvRow {
                name: "x".into(),
                timestamp: 1_700_000_002,
                value: Some(f64::NEG_INFINITY),
            },
        ];
        assert_eq!(
            csv(&rows),
            "a.b,2023-11-14 22:13:20,42\n\
             \"sumSeries(a,\"\"b\"\")\",2023-11-14 22:13:21,\n\
             x,2023-11-14 22:13:22,-inf\n"
        );
    }

    #[test]
    fn json_is_written_as_graphite_web_writes_it_infinities_included() {
        let a = series(
            "a\"b",
            &[
                (1, Some(1.0)),
                (2, None),
                (3, Some(f64::INFINITY)),
                (4, Some(f64::NEG_INFINITY)),
                (5, Some(0.25)),
            ],
        );
        assert_eq!(
            json(&[a, series("c", &[])]),
            "[{\"target\": \"a\\\"b\", \"tags\": {\"name\": \"a\\\"b\"}, \"datapoints\": \
             [[1.0, 1], [null, 2], [1e9999, 3], [-1e9999, 4], [0.25, 5]]}, \
             {\"target\": \"c\", \"tags\": {\"name\": \"c\"}, \"datapoints\": []}]\n"
        );
        assert_eq!(json(&[]), "[]\n");
    }

    #[test]
    fn a_branch_ends_with_a_dot_and_a_leaf_does_not() {
        let node = |path: &str, leaf| Node {
            path: path.into(),
            name: String::new(),
            leaf,
            has_children: !leaf,
        };
        assert_eq!(node_line(&node("app.server1", false)), "app.server1.\n");
        assert_eq!(node_line(&node("app.up", true)), "app.up\n");
        assert_eq!(
            node_line(&node("evil\u{1b}[2J", true)),
            "evil\\u{1b}[2J\n",
            "an escape sequence from the server is shown, not obeyed"
        );
    }

    #[test]
    fn an_event_is_one_line_with_its_time_what_tags_and_data() {
        let event = Event {
            id: 1,
            what: "deploy\nv2".into(),
            when: 1_700_000_000.75,
            tags: vec!["deploy".into(), "app".into()],
            data: "by ci".into(),
        };
        assert_eq!(
            event_line(&event),
            "2023-11-14 22:13:20  deploy\\nv2  [deploy,app]  by ci\n"
        );
        let bare = Event {
            tags: vec![],
            data: String::new(),
            what: "x".into(),
            ..event
        };
        assert_eq!(event_line(&bare), "2023-11-14 22:13:20  x  []\n");
    }
}
