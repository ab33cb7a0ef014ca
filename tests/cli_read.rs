//! The `graphyte` read subcommands (`render`, `find`, `tags`, `event`), run as a user runs
//! them: the real binary against a real graphite-web reading a real carbon-cache, and against
//! a loopback HTTP stub for what a real server will not do (fail, refuse, stay silent).
//!
//! Nothing waits on the clock: data is waited for until graphite-web shows it (and failed
//! after a deadline), and a run until it exits (failed if it takes longer than `RUN_LIMIT`).

mod support;

use std::ffi::OsStr;
use std::process::Command;
use std::time::Duration;

use graphyte::{Metric, Sender};
use support::graphite_web::{Graphite, encode};
use support::http::{Answer, HttpStub, answer};
use support::process::{Finished, run_to_end};
use support::{recent_second, unused_port, wait_until};

/// The longest a run may take: past it, the run is killed and the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// How long graphite-web may take to show what carbon was sent.
const DATA_LIMIT: Duration = Duration::from_secs(20);

/// The binary, with none of the caller's GRAPHITE_* variables or terminal width.
fn graphyte<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_graphyte"));
    command.args(args);
    for var in [
        "GRAPHITE_URL",
        "GRAPHITE_USER",
        "GRAPHITE_PASSWORD",
        "GRAPHITE_HOST",
        "GRAPHITE_PORT",
        "COLUMNS",
    ] {
        command.env_remove(var);
    }
    command
}

/// The binary, told graphite-web's URL with `--url`.
fn graphyte_at<I, S>(url: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = graphyte(args);
    command.arg("--url").arg(url);
    command
}

/// A finished run of the binary.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    /// The exit status is `code`, and nothing panicked.
    fn assert_exit(&self, code: i32) {
        assert!(
            !self.stderr.contains("panicked"),
            "graphyte panicked:\n{}",
            self.stderr
        );
        assert_eq!(
            self.code, code,
            "exit status; stderr:\n{}\nstdout:\n{}",
            self.stderr, self.stdout
        );
    }

    /// Exit status 0, nothing on stderr.
    fn assert_success(&self) {
        self.assert_exit(0);
        assert_eq!(self.stderr, "", "stderr");
    }

    /// Exit status 2 with clap's kind of report, its first line `error: …` holding each of
    /// `about`, and nothing on stdout.
    fn assert_usage_error(&self, about: &[&str]) {
        self.assert_exit(2);
        let first = self.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && about.iter().all(|a| first.contains(a)),
            "first stderr line {first:?} should be `error: …` naming {about:?}; stderr:\n{}",
            self.stderr
        );
        assert_eq!(self.stdout, "", "stdout");
    }

    /// Stderr is one line, `graphyte: …` containing `about`; stdout is empty.
    fn assert_one_complaint(&self, about: &str) {
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one line on stderr:\n{}",
            self.stderr
        );
        assert!(
            self.stderr.starts_with("graphyte: ") && self.stderr.contains(about),
            "stderr should be `graphyte: …{about}…`: {:?}",
            self.stderr
        );
        assert_eq!(self.stdout, "", "stdout");
    }

    /// `secret` is in neither stdout nor stderr.
    fn assert_never_shows(&self, secret: &str) {
        assert!(
            !self.stdout.contains(secret) && !self.stderr.contains(secret),
            "{secret:?} shown:\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `command` with nothing on stdin, and waits for it to exit.
fn run(command: Command) -> Run {
    let Finished {
        code,
        stdout,
        stderr,
        took,
    } = run_to_end(command, None, RUN_LIMIT);
    Run {
        code,
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr,
        took,
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` in UTC, counted out year by year and month by
/// month (not the binary's arithmetic).
fn utc(secs: u32) -> String {
    let mut days = secs / 86_400;
    let rest = secs % 86_400;
    let leap = |y: u32| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= lengths[month] {
        days -= lengths[month];
        month += 1;
    }
    format!(
        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        month + 1,
        days + 1,
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// A synchronous sender to the carbon-cache of `graphite`: each point is written when
/// `send_at` returns.
fn sender(graphite: &Graphite) -> Sender {
    Sender::builder("127.0.0.1")
        .port(graphite.carbon.line_port)
        .synchronous()
        .build()
        .unwrap()
}

/// Sends `value` for `name` (with `tags`) at `ts`, failing the test if it is not written.
fn send(sender: &Sender, name: &str, value: f64, ts: u32, tags: &[(&str, &str)]) {
    sender
        .try_send(Metric::new(name.to_owned(), value).tags(tags).timestamp(ts))
        .unwrap_or_else(|err| panic!("sending {name} to carbon: {err}"));
}

/// Waits until graphite-web renders `count` values (not nulls) for `target` between `from`
/// (exclusive) and `until`, and fails the test if it does not within `DATA_LIMIT`.
fn wait_for_values(graphite: &Graphite, target: &str, from: u32, until: u32, count: usize) {
    let path = format!(
        "/render?target={}&from={from}&until={until}&format=json",
        encode(target)
    );
    let mut last = (0, String::new());
    let shown = wait_until(DATA_LIMIT, || {
        last = graphite.web.get(&path);
        last.0 == 200 && values_in(&last.1) >= count
    });
    assert!(
        shown,
        "graphite-web did not show {count} values of {target}: GET {path} gave {} {}\n\
         graphite-web log:\n{}",
        last.0,
        last.1,
        graphite.web.log()
    );
}

/// The values (not nulls) of graphite-web's JSON render `body`.
fn values_in(body: &str) -> usize {
    let Ok(serde_json::Value::Array(series)) = serde_json::from_str(body) else {
        return 0;
    };
    series
        .iter()
        .filter_map(|s| s["datapoints"].as_array())
        .flatten()
        .filter(|point| !point[0].is_null())
        .count()
}

/// Two series in a graphite of their own: `rb.a` 1, 2, 3, 4 and `rb.b` 10, (none), 30.5, 40
/// at `t0`…`t0 + 3`, shown by graphite-web. Returns the graphite and `t0`.
fn two_series() -> (Graphite, u32) {
    let graphite = Graphite::start();
    let t0 = recent_second();
    let sender = sender(&graphite);
    for (i, value) in [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)] {
        send(&sender, "rb.a", value, t0 + i, &[]);
    }
    for (i, value) in [(0, 10.0), (2, 30.5), (3, 40.0)] {
        send(&sender, "rb.b", value, t0 + i, &[]);
    }
    graphite.wait_for_metric("rb.a");
    graphite.wait_for_metric("rb.b");
    wait_for_values(&graphite, "rb.a", t0 - 1, t0 + 3, 4);
    wait_for_values(&graphite, "rb.b", t0 - 1, t0 + 3, 3);
    (graphite, t0)
}

/// `graphyte render rb.a rb.b --from t0-1 --until t0+3` and `extra`, against `graphite`.
fn render_two(graphite: &Graphite, t0: u32, extra: &[&str]) -> Command {
    let (from, until) = ((t0 - 1).to_string(), (t0 + 3).to_string());
    let mut args = vec!["render", "rb.a", "rb.b", "--from", &from, "--until", &until];
    args.extend(extra);
    graphyte_at(&graphite.web.url, args)
}

// Against a real graphite-web.

#[test]
fn render_prints_a_table_of_utc_times_with_a_column_per_series_and_empty_cells_for_no_value() {
    let (graphite, t0) = two_series();
    let run = run(render_two(&graphite, t0, &[]));
    run.assert_success();
    println!("{}", run.stdout);
    assert_eq!(
        run.stdout,
        format!(
            "time                 rb.a  rb.b\n\
             {}     1    10\n\
             {}     2\n\
             {}     3  30.5\n\
             {}     4    40\n",
            utc(t0),
            utc(t0 + 1),
            utc(t0 + 2),
            utc(t0 + 3)
        )
    );
}

#[test]
fn render_format_csv_prints_name_utc_time_and_value_rows() {
    let (graphite, t0) = two_series();
    let run = run(render_two(&graphite, t0, &["--format", "csv"]));
    run.assert_success();
    let rows = [
        ("rb.a", 0, "1"),
        ("rb.a", 1, "2"),
        ("rb.a", 2, "3"),
        ("rb.a", 3, "4"),
        ("rb.b", 0, "10"),
        ("rb.b", 1, ""),
        ("rb.b", 2, "30.5"),
        ("rb.b", 3, "40"),
    ];
    let expected: String = rows
        .iter()
        .map(|(name, i, value)| format!("{name},{},{value}\n", utc(t0 + i)))
        .collect();
    assert_eq!(run.stdout, expected);
}

#[test]
fn render_format_json_prints_the_series_as_graphite_web_does() {
    let (graphite, t0) = two_series();
    let run = run(render_two(&graphite, t0, &["--format", "json"]));
    run.assert_success();
    assert_eq!(
        run.stdout,
        format!(
            "[{{\"target\": \"rb.a\", \"tags\": {{\"name\": \"rb.a\"}}, \"datapoints\": \
             [[1.0, {t0}], [2.0, {}], [3.0, {}], [4.0, {}]]}}, \
             {{\"target\": \"rb.b\", \"tags\": {{\"name\": \"rb.b\"}}, \"datapoints\": \
             [[10.0, {t0}], [null, {}], [30.5, {}], [40.0, {}]]}}]\n",
            t0 + 1,
            t0 + 2,
            t0 + 3,
            t0 + 1,
            t0 + 2,
            t0 + 3
        )
    );
    // And it reads back as JSON.
    let read: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(read[1]["datapoints"][2][0], 30.5);
}

#[test]
fn render_format_chart_draws_a_sparkline_per_series_with_min_max_and_last() {
    let (graphite, t0) = two_series();
    let run = run(render_two(&graphite, t0, &["--format", "chart"]));
    run.assert_success();
    println!("{}", run.stdout);
    assert_eq!(
        run.stdout,
        "rb.a  ▁▃▆█  min 1 max 4 last 4\n\
         rb.b  ▁ ▆█  min 10 max 40 last 40\n"
    );
}

#[test]
fn render_format_chart_fits_the_width_in_columns() {
    let graphite = Graphite::start();
    let t0 = recent_second();
    let sender = sender(&graphite);
    let name = "chart.a.rather.long.metric.name.that.does.not.fit.in.the.width";
    for i in 0..300 {
        send(&sender, name, f64::from(i % 50), t0 + i, &[]);
    }
    graphite.wait_for_metric(name);
    wait_for_values(&graphite, name, t0 - 1, t0 + 299, 300);
    let (from, until) = ((t0 - 1).to_string(), (t0 + 299).to_string());
    let mut command = graphyte_at(
        &graphite.web.url,
        [
            "render", name, "--from", &from, "--until", &until, "--format", "chart",
        ],
    );
    command.env("COLUMNS", "60");
    let run = run(command);
    run.assert_success();
    println!("{}", run.stdout);
    // 300 points in 16 characters, the name shortened to what is left of 60 columns.
    assert_eq!(
        run.stdout,
        "chart.a.r….the.width  ▂▅▅▃▆▄▄▇▂▅▅▃▆▄▄▇  min 0 max 49 last 49\n"
    );
    assert_eq!(run.stdout.trim_end().chars().count(), 60);
}

#[test]
fn render_png_writes_graphite_webs_image_to_the_file_and_says_so() {
    let (graphite, t0) = two_series();
    let file = std::env::temp_dir().join(format!("graphyte-cli-read-{}.png", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let file_arg = file.to_str().unwrap();
    let run = run(render_two(
        &graphite,
        t0,
        &["--png", file_arg, "--width", "400", "--height", "300"],
    ));
    let png = std::fs::read(&file).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    run.assert_exit(0);
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{:?}",
        &png[..png.len().min(16)]
    );
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        format!("graphyte: wrote {file_arg} ({} bytes)\n", png.len())
    );
}

#[test]
fn find_lists_branches_with_a_trailing_dot_and_leaves_without() {
    let graphite = Graphite::start();
    let t0 = recent_second();
    let sender = sender(&graphite);
    for name in ["fd.server1.requests", "fd.server2.requests", "fd.up"] {
        send(&sender, name, 1.0, t0, &[]);
    }
    for name in ["fd.server1.requests", "fd.server2.requests", "fd.up"] {
        graphite.wait_for_metric(name);
    }
    let run = run(graphyte_at(&graphite.web.url, ["find", "fd.*"]));
    run.assert_success();
    assert_eq!(run.stdout, "fd.server1.\nfd.server2.\nfd.up\n");
}

/// A graphite with three tagged series: `tg.cpu;dc=east;env=prod`, `tg.mem;env=prod` and
/// `tg.disk;env=dev`, each registered in graphite-web's tag index.
fn tagged_series() -> Graphite {
    let graphite = Graphite::start();
    let t0 = recent_second();
    let sender = sender(&graphite);
    send(
        &sender,
        "tg.cpu",
        1.0,
        t0,
        &[("dc", "east"), ("env", "prod")],
    );
    send(&sender, "tg.mem", 2.0, t0, &[("env", "prod")]);
    send(&sender, "tg.disk", 3.0, t0, &[("env", "dev")]);
    let path = format!("/tags/findSeries?expr={}", encode("name=~^tg\\."));
    let mut last = (0, String::new());
    let registered = wait_until(DATA_LIMIT, || {
        last = graphite.web.get(&path);
        last.1.matches("tg.").count() == 3
    });
    assert!(
        registered,
        "graphite-web did not index the three tagged series: {last:?}\ncarbon log:\n{}",
        graphite.carbon.log()
    );
    graphite
}

#[test]
fn tags_lists_the_tag_names_one_per_line() {
    let graphite = tagged_series();
    let run = run(graphyte_at(&graphite.web.url, ["tags"]));
    run.assert_success();
    assert_eq!(run.stdout, "dc\nenv\nname\n");
}

#[test]
fn tags_with_a_tag_lists_its_values_with_their_counts_of_series() {
    let graphite = tagged_series();
    let run = run(graphyte_at(&graphite.web.url, ["tags", "env"]));
    run.assert_success();
    assert_eq!(run.stdout, "dev\t1\nprod\t2\n");
}

#[test]
fn an_added_event_is_listed_with_its_time_what_tags_and_data() {
    let graphite = Graphite::start();
    let when = recent_second();
    let add = run(graphyte_at(
        &graphite.web.url,
        [
            "event",
            "add",
            "deploy rb v2",
            "--tag",
            "deploy",
            "--tag",
            "rb",
            "--data",
            "by ci #12",
            "--when",
            &when.to_string(),
        ],
    ));
    add.assert_success();
    assert_eq!(add.stdout, "");
    let (from, until) = ((when - 60).to_string(), (when + 60).to_string());
    let list = run(graphyte_at(
        &graphite.web.url,
        ["event", "list", "--from", &from, "--until", &until],
    ));
    list.assert_success();
    assert_eq!(
        list.stdout,
        format!("{}  deploy rb v2  [deploy,rb]  by ci #12\n", utc(when))
    );
}

#[test]
fn event_list_with_a_tag_shows_only_the_events_with_it() {
    let graphite = Graphite::start();
    let when = recent_second();
    for (what, tag) in [("one", "deploy"), ("two", "alert")] {
        run(graphyte_at(
            &graphite.web.url,
            [
                "event",
                "add",
                what,
                "--tag",
                tag,
                "--when",
                &when.to_string(),
            ],
        ))
        .assert_success();
    }
    let list = run(graphyte_at(
        &graphite.web.url,
        ["event", "list", "--from", "-1d", "--tag", "alert"],
    ));
    list.assert_success();
    assert_eq!(list.stdout, format!("{}  two  [alert]\n", utc(when)));
}

// Against a graphite-web that needs credentials.

#[test]
fn the_right_credentials_read_from_a_graphite_web_that_needs_them() {
    let graphite = Graphite::start_with_auth("reader", "s3cret");
    let mut command = graphyte_at(&graphite.web.url, ["tags", "--user", "reader"]);
    command.env("GRAPHITE_PASSWORD", "s3cret");
    let run = run(command);
    run.assert_success();
}

#[test]
fn a_wrong_password_exits_1_saying_the_credentials_were_refused() {
    let graphite = Graphite::start_with_auth("reader", "s3cret");
    let run = run(graphyte_at(
        &graphite.web.url,
        ["find", "*", "--user", "reader", "--password", "wr0ng-pw"],
    ));
    run.assert_exit(1);
    run.assert_one_complaint("refused the credentials");
    run.assert_never_shows("wr0ng-pw");
}

#[test]
fn no_credentials_exit_1_saying_credentials_are_needed() {
    let graphite = Graphite::start_with_auth("reader", "s3cret");
    let run = run(graphyte_at(&graphite.web.url, ["find", "*"]));
    run.assert_exit(1);
    run.assert_one_complaint("needs credentials");
}

// Against a stub.

#[test]
fn a_closed_port_exits_3_naming_the_server() {
    let url = format!("http://127.0.0.1:{}", unused_port());
    let run = run(graphyte_at(&url, ["find", "*"]));
    run.assert_exit(3);
    run.assert_one_complaint(&format!("cannot connect to graphite-web at {url}"));
}

#[test]
fn a_server_that_never_answers_exits_3_at_the_timeout() {
    let stub = HttpStub::start(|_| Answer::Silent);
    let run = run(graphyte_at(&stub.url, ["render", "a.b", "--timeout", "1"]));
    run.assert_exit(3);
    run.assert_one_complaint("did not answer within 1s");
    assert!(run.took < Duration::from_secs(10), "took {:?}", run.took);
}

#[test]
fn a_server_error_exits_1_with_graphite_webs_message() {
    let stub = HttpStub::start(|_| answer(500, "text/html", b"<h1>Server Error (500)</h1>"));
    let run = run(graphyte_at(&stub.url, ["render", "a.b"]));
    run.assert_exit(1);
    run.assert_one_complaint(&format!(
        "graphite-web at {}/render answered HTTP 500: Server Error (500)",
        stub.url
    ));
}

#[test]
fn an_answer_that_is_not_graphite_webs_exits_1_saying_so() {
    let stub = HttpStub::start(|_| answer(200, "text/html", b"<html>a login page</html>"));
    let run = run(graphyte_at(&stub.url, ["find", "*"]));
    run.assert_exit(1);
    run.assert_one_complaint("sent an answer graphyte cannot read");
}

#[test]
fn refused_credentials_from_the_command_line_exit_1_and_the_password_is_shown_nowhere() {
    let stub = HttpStub::start(|_| answer(401, "text/plain", b"401 Unauthorized\n"));
    let run = run(graphyte_at(
        &stub.url,
        ["tags", "--user", "reader", "--password", "pa55-w0rd"],
    ));
    run.assert_exit(1);
    run.assert_one_complaint("refused the credentials (HTTP 401)");
    run.assert_never_shows("pa55-w0rd");
}

#[test]
fn refused_credentials_from_the_environment_exit_1_and_the_password_is_shown_nowhere() {
    let stub = HttpStub::start(|_| answer(401, "text/plain", b"401 Unauthorized\n"));
    let mut command = graphyte(["event", "list"]);
    command
        .env("GRAPHITE_URL", &stub.url)
        .env("GRAPHITE_USER", "reader")
        .env("GRAPHITE_PASSWORD", "pa55-w0rd");
    let run = run(command);
    run.assert_exit(1);
    run.assert_one_complaint("refused the credentials (HTTP 401)");
    run.assert_never_shows("pa55-w0rd");
    // They were sent: base64 of `reader:pa55-w0rd`.
    let requests = stub.requests();
    assert_eq!(
        requests[0].header("Authorization"),
        Some("Basic cmVhZGVyOnBhNTUtdzByZA==")
    );
}

#[test]
fn graphite_url_chooses_the_server() {
    let stub = HttpStub::start(|_| answer(200, "application/json", br#"[{"tag": "env"}]"#));
    let mut command = graphyte(["tags"]);
    command.env("GRAPHITE_URL", &stub.url);
    let run = run(command);
    run.assert_success();
    assert_eq!(run.stdout, "env\n");
    assert_eq!(stub.requests()[0].target, "/tags");
}

#[test]
fn a_render_matching_no_series_says_so_on_stderr_and_exits_0() {
    let stub = HttpStub::start(|_| answer(200, "application/json", b"[]"));
    let run = run(graphyte_at(&stub.url, ["render", "no.such.*"]));
    run.assert_exit(0);
    run.assert_one_complaint("no series");
}

#[test]
fn a_missing_url_is_a_usage_error_naming_url_and_graphite_url() {
    for args in [
        &["render", "a.b"][..],
        &["find", "*"],
        &["tags"],
        &["event", "list"],
        &["event", "add", "x"],
    ] {
        run(graphyte(args)).assert_usage_error(&["--url", "GRAPHITE_URL"]);
    }
}

#[test]
fn from_in_minutes_written_m_is_a_usage_error_with_the_units_graphite_web_takes() {
    let stub = HttpStub::start(|_| answer(200, "application/json", b"[]"));
    let run = run(graphyte_at(&stub.url, ["render", "a.b", "--from", "-5m"]));
    run.assert_usage_error(&["-5m", "s, min, h, d, w, mon and y"]);
    assert!(stub.requests().is_empty(), "nothing is asked of the server");
}

#[test]
fn each_read_subcommand_has_examples_in_its_help_and_never_shows_the_password() {
    for args in [
        &["render", "--help"][..],
        &["find", "--help"],
        &["tags", "--help"],
        &["event", "--help"],
        &["event", "add", "--help"],
        &["event", "list", "--help"],
    ] {
        let mut command = graphyte(args);
        command.env("GRAPHITE_PASSWORD", "pa55-w0rd");
        let run = run(command);
        run.assert_exit(0);
        assert!(run.stdout.contains("Examples:"), "{args:?}: {}", run.stdout);
        run.assert_never_shows("pa55-w0rd");
    }
}
