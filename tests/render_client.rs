//! The render client against answers a real graphite-web does not give: refused and silent
//! connections, error statuses, hostile and truncated bodies, and exactly what goes out.

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use graphyte::render::{Client, Error, NewEvent, Query, Time};
use support::http::{Answer, HttpStub, answer};

const JSON: &str = "application/json";

fn client(stub: &HttpStub) -> Client {
    Client::builder(&stub.url)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

fn render_of(body: &'static [u8]) -> Result<Vec<graphyte::render::Series>, Error> {
    let stub = HttpStub::start(move |_| answer(200, JSON, body));
    client(&stub).render(&Query::new("a.b"))
}

#[test]
fn a_closed_port_is_a_connect_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let err = client.render(&Query::new("a.b")).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn a_host_that_does_not_resolve_is_a_connect_error() {
    let client = Client::new("http://graphite.invalid").unwrap();
    let err = client.find("a.*").unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}

#[test]
fn a_server_that_never_answers_is_a_timeout_at_the_clients_timeout() {
    let stub = HttpStub::start(|_| Answer::Silent);
    let client = Client::builder(&stub.url)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = client.render(&Query::new("a.b")).unwrap_err();
    assert!(
        matches!(err, Error::Timeout { after, .. } if after == Duration::from_millis(500)),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_401_without_credentials_says_credentials_are_needed() {
    let stub = HttpStub::start(|_| answer(401, "text/plain", b"no"));
    let err = client(&stub).tags().unwrap_err();
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
    assert!(err.to_string().contains("needs credentials"), "{err}");
}

#[test]
fn a_401_or_403_with_credentials_says_they_were_refused_and_never_shows_them() {
    for status in [401, 403] {
        let stub = HttpStub::start(move |_| answer(status, "text/plain", b"no"));
        let client = Client::builder(&stub.url)
            .basic_auth("reader", "pa55-w0rd")
            .build()
            .unwrap();
        let err = client.tags().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unauthorized {
                    sent_credentials: true,
                    ..
                }
            ),
            "{err:?}"
        );
        for shown in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
            assert!(!shown.contains("pa55-w0rd"), "{shown}");
        }
    }
}

#[test]
fn an_error_status_carries_graphite_webs_own_message() {
    let stub = HttpStub::start(|_| answer(400, JSON, br#"{"error": "Invalid tag expression: x"}"#));
    let err = client(&stub).find_series(&["x"]).unwrap_err();
    assert_eq!(
        err,
        Error::Status {
            url: format!("{}/tags/findSeries", stub.url),
            status: 400,
            message: "Invalid tag expression: x".into(),
        }
    );
    let stub = HttpStub::start(|_| answer(500, "text/html", b"<h1>Server Error (500)</h1>"));
    let err = client(&stub).render(&Query::new("a.b")).unwrap_err();
    assert!(
        err.to_string().ends_with("HTTP 500: Server Error (500)"),
        "{err}"
    );
}

#[test]
fn a_truncated_body_is_malformed_and_says_it_was_cut_short() {
    let stub = HttpStub::start(|_| {
        Answer::Raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"target\""
                .to_vec(),
        )
    });
    let err = client(&stub).render(&Query::new("a.b")).unwrap_err();
    assert!(
        matches!(&err, Error::Malformed { detail, .. } if detail.contains("cut short")),
        "{err:?}"
    );
}

#[test]
fn hostile_bodies_are_malformed_errors_for_every_kind_of_answer() {
    let bodies: &[&'static [u8]] = &[
        b"",
        b"<html>proxy error</html>",
        b"[{\"target\": \"a\", \"datapoints\": [[1, 1], [2",
        b"{\"results\": 5}",
        b"[{\"target\": 1e9999}]",
        b"\xff\xfe\x00",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ];
    for &body in bodies {
        let stub = HttpStub::start(move |_| answer(200, JSON, body));
        let client = client(&stub);
        let results = [
            client.render(&Query::new("a")).map(drop),
            client.render_csv(&Query::new("a")).map(drop),
            client.find("a.*").map(drop),
            client.expand(&["a.*"]).map(drop),
            client.tags().map(drop),
            client.tag_values("env").map(drop),
            client.find_series(&["env=prod"]).map(drop),
            client.events(Time::from(1), Time::now(), &[]).map(drop),
        ];
        for (kind, result) in results.into_iter().enumerate() {
            // An empty CSV (the second kind) is no rows, which is no error.
            if body.is_empty() && kind == 1 {
                assert_eq!(result, Ok(()));
                continue;
            }
            assert!(
                matches!(result, Err(Error::Malformed { .. })),
                "{}: {result:?}",
                body.escape_ascii()
            );
        }
    }
}

#[test]
fn json_infinities_are_read_from_the_wire() {
    let series = render_of(br#"[{"target": "x.inf", "tags": {"name": "x.inf"}, "datapoints": [[1e9999, 10], [-1e9999, 11], [null, 12]]}]"#).unwrap();
    assert_eq!(
        series[0].points,
        [
            (10, Some(f64::INFINITY)),
            (11, Some(f64::NEG_INFINITY)),
            (12, None)
        ]
    );
}

/// A query string's fields as a form decoder (Django's) reads them: `+` is a space.
fn form_fields(query: &str) -> Vec<(String, String)> {
    let decode = |text: &str| {
        let bytes = text.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] == b'%' {
                out.push(
                    u8::from_str_radix(std::str::from_utf8(&bytes[at + 1..at + 3]).unwrap(), 16)
                        .unwrap(),
                );
                at += 3;
            } else {
                out.push(bytes[at]);
                at += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    query
        .split('&')
        .map(|field| {
            let (key, value) = field.split_once('=').unwrap();
            (decode(key), decode(value))
        })
        .collect()
}

#[test]
fn a_render_asks_for_json_with_its_targets_range_and_budget_by_get() {
    let stub = HttpStub::start(|_| answer(200, JSON, b"[]"));
    let odd = "seriesByTag('a=b+c', 'd=~e&f') #{x,y}[0-9]%;é";
    let query = Query::new("sumSeries(a.*)")
        .target(odd)
        .from("-2days".parse::<Time>().unwrap())
        .until(Time::from(1_700_000_000))
        .max_data_points(10);
    client(&stub).render(&query).unwrap();
    let request = &stub.requests()[0];
    assert_eq!(request.method, "GET");
    let (path, query) = request.target.split_once('?').unwrap();
    assert_eq!(path, "/render");
    let fields = form_fields(query);
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("target", "sumSeries(a.*)"),
            ("target", odd),
            ("from", "-2days"),
            ("until", "1700000000"),
            ("maxDataPoints", "10"),
            ("format", "json"),
            ("tz", "UTC"),
        ]
    );
}

#[test]
fn a_render_of_many_long_targets_goes_by_post_as_a_form() {
    let stub = HttpStub::start(|_| answer(200, JSON, b"[]"));
    let target = format!("app.{}.requests", "x".repeat(300));
    let mut query = Query::new(&target);
    for _ in 0..9 {
        query = query.target(&target);
    }
    client(&stub).render(&query).unwrap();
    let request = &stub.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.target.as_str()),
        ("POST", "/render")
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let body = String::from_utf8(request.body.clone()).unwrap();
    assert_eq!(
        body.matches(&format!("target={target}")).count(),
        10,
        "{body}"
    );
    assert!(body.ends_with("&format=json&tz=UTC"), "{body}");
}

#[test]
fn credentials_and_headers_go_with_every_request() {
    let stub = HttpStub::start(|_| answer(200, JSON, b"[]"));
    let client = Client::builder(&stub.url)
        .basic_auth("Aladdin", "open sesame")
        .header("X-Scope", "team-a")
        .build()
        .unwrap();
    client.find("a.*").unwrap();
    client.find_series(&["env=prod"]).unwrap();
    for request in stub.requests() {
        assert_eq!(
            request.header("authorization"),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(request.header("x-scope"), Some("team-a"));
    }
}

#[test]
fn credentials_in_the_url_are_sent_as_basic_auth_and_shown_nowhere() {
    let stub = HttpStub::start(|_| answer(500, "text/plain", b"boom"));
    let url = stub.url.replace("http://", "http://Aladdin:open%20sesame@");
    let client = Client::new(&url).unwrap();
    let err = client.tags().unwrap_err();
    assert_eq!(
        stub.requests()[0].header("authorization"),
        Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    );
    assert_eq!(client.url(), stub.url);
    for shown in [err.to_string(), format!("{client:?}")] {
        assert!(!shown.contains("sesame"), "{shown}");
    }
}

#[test]
fn an_event_is_posted_as_json_to_the_events_path() {
    let stub = HttpStub::start(|_| answer(200, JSON, b"{\"success\": true}"));
    client(&stub)
        .add_event(
            &NewEvent::new("deploy v2")
                .tag("deploy")
                .data("ci #7")
                .when(1_700_000_000),
        )
        .unwrap();
    let request = &stub.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.target.as_str()),
        ("POST", "/events/")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let sent: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"what": "deploy v2", "tags": ["deploy"], "data": "ci #7", "when": 1_700_000_000})
    );
}

#[test]
fn a_png_render_returns_the_image_bytes_and_refuses_anything_else() {
    let png = b"\x89PNG\r\n\x1a\nrest-of-image";
    let stub = HttpStub::start(move |_| answer(200, "image/png", png));
    let image = client(&stub)
        .render_png(&Query::new("a.b"), 800, 600)
        .unwrap();
    assert_eq!(image, png);
    assert!(
        stub.requests()[0]
            .target
            .ends_with("&format=png&tz=UTC&width=800&height=600")
    );
    let stub = HttpStub::start(|_| answer(200, "text/html", b"<html>"));
    assert!(matches!(
        client(&stub).render_png(&Query::new("a.b"), 800, 600),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn a_redirect_is_not_followed_and_its_error_names_where_it_points() {
    let elsewhere = HttpStub::start(|_| answer(200, JSON, b"[]"));
    let to = format!("{}/render", elsewhere.url);
    let stub = HttpStub::start(move |_| {
        Answer::Raw(format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes())
    });
    let client = Client::builder(&stub.url)
        .header("X-Token", "t0ken")
        .build()
        .unwrap();
    let err = client.render(&Query::new("a.b")).unwrap_err();
    assert!(
        matches!(&err, Error::Status { status: 302, message, .. } if message.contains(&elsewhere.url)),
        "{err:?}"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the token went to the redirect's target"
    );
}

#[test]
fn a_tag_name_is_encoded_in_the_path_and_names_that_reach_other_views_are_refused() {
    let stub = HttpStub::start(|_| answer(200, JSON, br#"{"tag": "x", "values": []}"#));
    let client = client(&stub);
    client.tag_values("dc.name-1").unwrap();
    client.tag_values("h\u{e9}te").unwrap();
    let targets: Vec<String> = stub.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/tags/dc%2Ename-1", "/tags/h%C3%A9te"]);
    for odd in [
        "",
        ".",
        "..",
        "a/b",
        "a b",
        "a;b",
        "a=b",
        "a?b",
        "a#b",
        "a%b",
        "a\\b",
        "findSeries",
        "autoComplete",
        "delSeries",
        "tagSeries",
        "tagMultiSeries",
    ] {
        assert!(
            matches!(client.tag_values(odd), Err(Error::Config(_))),
            "{odd:?}"
        );
    }
    assert_eq!(
        stub.requests().len(),
        2,
        "nothing was sent for a refused name"
    );
}

#[test]
fn an_answer_that_trickles_in_is_a_timeout_at_the_clients_timeout() {
    let stub = HttpStub::start(|_| {
        Answer::Stream(Box::new(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[");
            for _ in 0..200 {
                if stream.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }))
    });
    let client = Client::builder(&stub.url)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = client.render(&Query::new("a.b")).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn an_endless_answer_stops_at_the_size_limit() {
    let stub = HttpStub::start(|_| {
        Answer::Stream(Box::new(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[");
            let chunk = vec![b' '; 64 << 10];
            while stream.write_all(&chunk).is_ok() {}
        }))
    });
    let client = Client::builder(&stub.url)
        .max_answer_size(1 << 20)
        .build()
        .unwrap();
    let err = client.render(&Query::new("a.b")).unwrap_err();
    assert!(
        matches!(&err, Error::Malformed { detail, .. } if detail.contains("larger than 1048576 bytes")),
        "{err:?}"
    );
}
