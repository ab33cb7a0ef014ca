//! What a `Sender` writes to a real carbon-cache, read back through a real graphite-web with
//! the render client: render (JSON and CSV), find, expand, the tag API, events, and basic auth.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use graphyte::render::{Client, Error, NewEvent, Node, Query, Series, Time};
use graphyte::{Metric, Sender, Value};
use support::graphite_web::Graphite;
use support::{recent_second, wait_until};

/// Long enough for carbon to create a file and graphite-web to see it, on a busy machine.
const VISIBLE_WITHIN: Duration = Duration::from_secs(20);

fn sender(graphite: &Graphite) -> Sender {
    Sender::builder("127.0.0.1")
        .port(graphite.carbon.line_port)
        .synchronous()
        .build()
        .unwrap()
}

fn client(graphite: &Graphite) -> Client {
    Client::new(&graphite.web.url).unwrap()
}

/// The points `query` renders once `ready` says they are all there.
fn render_when(
    client: &Client,
    query: &Query,
    mut ready: impl FnMut(&[Series]) -> bool,
) -> Vec<Series> {
    let mut last = Ok(Vec::new());
    let done = wait_until(VISIBLE_WITHIN, || {
        last = client.render(query);
        last.as_ref().is_ok_and(|series| ready(series))
    });
    assert!(
        done,
        "graphite-web did not render {:?} in time: {last:?}",
        query.targets()
    );
    last.unwrap()
}

/// The range of `points` timestamps from `t0`, one a second, as a render's `from`/`until`
/// (graphite-web's `from` is exclusive).
fn around(target: &str, t0: u32, seconds: u32) -> Query {
    Query::new(target).from(t0 - 1).until(t0 + seconds - 1)
}

fn values(series: &Series) -> Vec<(u32, Option<f64>)> {
    series.points.clone()
}

#[test]
fn points_sent_by_a_sender_render_as_json_with_exact_values_timestamps_and_gaps() {
    let graphite = Graphite::start();
    let t0 = recent_second();
    let sent = [
        (0, Value::from(42)),
        (1, Value::from(-7.25)),
        (3, Value::from(1e15)),
    ];
    let sender = sender(&graphite);
    for (offset, value) in sent {
        sender
            .try_send(Metric::new("rb.json.points", value).timestamp(t0 + offset))
            .unwrap();
    }
    let series = render_when(
        &client(&graphite),
        &around("rb.json.points", t0, 4),
        |series| {
            series.len() == 1 && series[0].points.iter().filter(|p| p.1.is_some()).count() == 3
        },
    );
    assert_eq!(series[0].name, "rb.json.points");
    assert_eq!(
        series[0].tags.get("name").map(String::as_str),
        Some("rb.json.points")
    );
    assert_eq!(
        values(&series[0]),
        [
            (t0, Some(42.0)),
            (t0 + 1, Some(-7.25)),
            (t0 + 2, None),
            (t0 + 3, Some(1e15))
        ]
    );
}

#[test]
fn csv_rows_give_the_same_points_with_utc_times_as_unix_seconds() {
    let graphite = Graphite::start();
    let t0 = recent_second();
    let sender = sender(&graphite);
    sender
        .try_send(Metric::new("rb.csv.points", 1.5).timestamp(t0))
        .unwrap();
    sender
        .try_send(Metric::new("rb.csv.points", 2).timestamp(t0 + 2))
        .unwrap();
    let client = client(&graphite);
    let query = around("rb.csv.points", t0, 3);
    render_when(&client, &query, |series| {
        series.len() == 1 && series[0].points.iter().filter(|p| p.1.is_some()).count() == 2
    });
    let rows: Vec<(String, u32, Option<f64>)> = client
        .render_csv(&query)
        .unwrap()
        .into_iter()
        .map(|row| (row.name, row.timestamp, row.value))
        .collect();
    let name = "rb.csv.points".to_owned();
    assert_eq!(
        rows,
        [
            (name.clone(), t0, Some(1.5)),
            (name.clone(), t0 + 1, None),
            (name, t0 + 2, Some(2.0))
        ]
    );
}

#[test]
fn an_infinite_value_stored_by_carbon_reads_back_as_infinity() {
    let graphite = Graphite::start();
    let t0 = recent_second();
    // Carbon stores `inf` (graphite-web then writes 1e9999); graphyte refuses to send it, so
    // the line goes in by hand.
    let mut carbon = TcpStream::connect(("127.0.0.1", graphite.carbon.line_port)).unwrap();
    write!(
        carbon,
        "rb.inf.points inf {t0}\nrb.inf.points -inf {}\n",
        t0 + 1
    )
    .unwrap();
    drop(carbon);
    let series = render_when(
        &client(&graphite),
        &around("rb.inf.points", t0, 2),
        |series| series.len() == 1 && series[0].points.iter().all(|p| p.1.is_some()),
    );
    assert_eq!(
        values(&series[0]),
        [(t0, Some(f64::INFINITY)), (t0 + 1, Some(f64::NEG_INFINITY))]
    );
}

#[test]
fn a_function_target_renders_its_computed_series() {
    let graphite = Graphite::start();
    let t0 = recent_second();
    let sender = sender(&graphite);
    sender
        .try_send(Metric::new("rb.sum.a", 1).timestamp(t0))
        .unwrap();
    sender
        .try_send(Metric::new("rb.sum.b", 2).timestamp(t0))
        .unwrap();
    let series = render_when(
        &client(&graphite),
        &around("sumSeries(rb.sum.*)", t0, 1),
        |series| series.len() == 1 && series[0].points == [(t0, Some(3.0))],
    );
    assert_eq!(series[0].name, "sumSeries(rb.sum.*)");
}

#[test]
fn many_long_targets_go_by_post_and_each_renders() {
    let graphite = Graphite::start();
    let t0 = recent_second();
    let sender = sender(&graphite);
    let names: Vec<String> = (0..12)
        .map(|i| format!("rb.post.{}.s{i:02}", "long".repeat(50)))
        .collect();
    for (i, name) in names.iter().enumerate() {
        sender
            .try_send(Metric::new(name.clone(), i as u32).timestamp(t0))
            .unwrap();
    }
    let mut query = Query::new(&names[0]).from(t0 - 1).until(t0);
    for name in &names[1..] {
        query = query.target(name);
    }
    assert!(names.iter().map(String::len).sum::<usize>() > 2000);
    let series = render_when(&client(&graphite), &query, |series| {
        series.len() == 12
            && series
                .iter()
                .all(|s| s.points.iter().any(|p| p.1.is_some()))
    });
    for (i, name) in names.iter().enumerate() {
        let found = series.iter().find(|s| &s.name == name).unwrap();
        assert_eq!(found.points, [(t0, Some(i as f64))]);
    }
}

#[test]
fn a_target_that_matches_nothing_renders_no_series() {
    let graphite = Graphite::start();
    assert_eq!(
        client(&graphite).render(&Query::new("rb.nothing.here.*")),
        Ok(vec![])
    );
}

#[test]
fn find_lists_the_branches_and_leaves_under_a_glob_and_expand_the_paths() {
    let graphite = Graphite::start();
    let t0 = recent_second();
    let sender = sender(&graphite);
    for name in ["rb.find.web1.cpu", "rb.find.web2.cpu", "rb.find.total"] {
        sender.try_send(Metric::new(name, 1).timestamp(t0)).unwrap();
    }
    let client = client(&graphite);
    let mut nodes = Vec::new();
    let found = wait_until(VISIBLE_WITHIN, || {
        nodes = client.find("rb.find.*").unwrap_or_default();
        nodes.len() == 3
    });
    assert!(found, "{nodes:?}");
    nodes.sort_by(|a, b| a.path.cmp(&b.path));
    let node = |path: &str, leaf: bool| Node {
        path: path.into(),
        name: path.rsplit('.').next().unwrap().into(),
        leaf,
        has_children: !leaf,
    };
    assert_eq!(
        nodes,
        [
            node("rb.find.total", true),
            node("rb.find.web1", false),
            node("rb.find.web2", false)
        ]
    );
    let mut paths = client.expand(&["rb.find.*.cpu"]).unwrap();
    paths.sort();
    assert_eq!(paths, ["rb.find.web1.cpu", "rb.find.web2.cpu"]);
}

#[test]
fn tagged_series_are_found_by_the_tag_api_and_rendered_by_series_by_tag() {
    let graphite = Graphite::start();
    let t0 = recent_second();
    let sender = sender(&graphite);
    sender
        .try_send(
            Metric::new("rb.tagged", 5)
                .tags(&[("env", "prod"), ("host", "web1")])
                .timestamp(t0),
        )
        .unwrap();
    sender
        .try_send(
            Metric::new("rb.tagged", 6)
                .tags(&[("env", "dev"), ("host", "web1")])
                .timestamp(t0),
        )
        .unwrap();
    let client = client(&graphite);
    let mut found = Vec::new();
    let registered = wait_until(VISIBLE_WITHIN, || {
        found = client.find_series(&["name=rb.tagged"]).unwrap_or_default();
        found.len() == 2
    });
    assert!(registered, "{found:?}");
    found.sort();
    assert_eq!(
        found,
        [
            "rb.tagged;env=dev;host=web1",
            "rb.tagged;env=prod;host=web1"
        ]
    );
    assert_eq!(
        client.find_series(&["name=rb.tagged", "env=prod"]).unwrap(),
        ["rb.tagged;env=prod;host=web1"]
    );
    let tags = client.tags().unwrap();
    for tag in ["env", "host", "name"] {
        assert!(tags.iter().any(|t| t == tag), "{tag} in {tags:?}");
    }
    let mut env: Vec<(String, u64)> = client
        .tag_values("env")
        .unwrap()
        .into_iter()
        .map(|v| (v.value, v.count))
        .collect();
    env.sort();
    assert_eq!(env, [("dev".to_owned(), 1), ("prod".to_owned(), 1)]);
    assert_eq!(
        client.autocomplete_tags("en", &["name=rb.tagged"]).unwrap(),
        ["env"]
    );
    assert_eq!(
        client
            .autocomplete_values("env", "pr", &["name=rb.tagged"])
            .unwrap(),
        ["prod"]
    );
    let query = Query::new("seriesByTag('name=rb.tagged','env=prod')")
        .from(t0 - 1)
        .until(t0);
    let series = render_when(&client, &query, |series| {
        series.len() == 1 && series[0].points == [(t0, Some(5.0))]
    });
    assert_eq!(series[0].tags.get("host").map(String::as_str), Some("web1"));
    assert_eq!(series[0].tags.get("env").map(String::as_str), Some("prod"));
}

#[test]
fn a_malformed_tag_expression_is_an_error_with_graphite_webs_reason() {
    let graphite = Graphite::start();
    let err = client(&graphite).find_series(&["notaspec"]).unwrap_err();
    assert!(
        matches!(&err, Error::Status { status: 400, message, .. } if message == "Invalid tagspec notaspec"),
        "{err:?}"
    );
}

#[test]
fn an_event_added_is_listed_with_its_what_tags_data_and_time() {
    let graphite = Graphite::start();
    let client = client(&graphite);
    let when = recent_second();
    client
        .add_event(
            &NewEvent::new("deploy app v2.1")
                .tag("deploy")
                .tag("app")
                .data("by ci #1234")
                .when(when),
        )
        .unwrap();
    client
        .add_event(&NewEvent::new("other").tag("unrelated"))
        .unwrap();
    let events = client
        .events(Time::from(when - 60), Time::now(), &["deploy"])
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.what, "deploy app v2.1");
    assert_eq!(event.tags, ["deploy", "app"]);
    assert_eq!(event.data, "by ci #1234");
    assert_eq!(event.when, f64::from(when));
    let all = client
        .events(Time::from(when - 60), Time::now(), &[])
        .unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
}

#[test]
fn graphite_webs_png_is_returned_as_an_image() {
    let graphite = Graphite::start();
    let png = client(&graphite)
        .render_png(&Query::new("rb.png.none"), 300, 200)
        .unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
}

#[test]
fn the_right_credentials_read_from_a_server_that_demands_them() {
    let graphite = Graphite::start_with_auth("reader", "s3cret-pw");
    let t0 = recent_second();
    let sender = sender(&graphite);
    sender
        .try_send(Metric::new("rb.auth.points", 9).timestamp(t0))
        .unwrap();
    let client = Client::builder(&graphite.web.url)
        .basic_auth("reader", "s3cret-pw")
        .build()
        .unwrap();
    let series = render_when(&client, &around("rb.auth.points", t0, 1), |series| {
        series.len() == 1 && series[0].points == [(t0, Some(9.0))]
    });
    assert_eq!(series[0].name, "rb.auth.points");
}

#[test]
fn a_wrong_password_or_none_is_refused_and_the_password_is_in_no_output() {
    let graphite = Graphite::start_with_auth("reader", "s3cret-pw");
    let wrong = Client::builder(&graphite.web.url)
        .basic_auth("reader", "wr0ng-pw")
        .build()
        .unwrap();
    let err = wrong.render(&Query::new("a.b")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                status: 401,
                sent_credentials: true,
                ..
            }
        ),
        "{err:?}"
    );
    for shown in [err.to_string(), format!("{err:?}"), format!("{wrong:?}")] {
        assert!(!shown.contains("wr0ng-pw"), "{shown}");
    }
    let err = client(&graphite).find("a.*").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                status: 401,
                sent_credentials: false,
                ..
            }
        ),
        "{err:?}"
    );
}
