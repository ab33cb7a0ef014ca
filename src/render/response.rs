//! Reading graphite-web's answers into typed values. Every parser takes any bytes and
//! returns a value or a message; none panics (`fuzz/fuzz_targets/render_response.rs`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

/// One series of a render: its name (graphite-web's `target`), its tags where graphite-web
/// gives them, and its points, each `(Unix seconds, value)`, `None` where the series has no
/// value. Infinite values (graphite-web writes them `1e9999`) are read as infinities.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' name: its path, or the expression that made it.
    pub name: String,
    /// Its tags (graphite-web 1.1 gives at least `name`); empty where it gives none.
    pub tags: BTreeMap<String, String>,
    /// The points, in time order.
    pub points: Vec<(u32, Option<f64>)>,
}

/// One row of a render in CSV (the Python framework's `getCSV`): a series' name, a Unix
/// time, and the value, `None` where the series has none.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    /// The series' name.
    pub name: String,
    /// Unix seconds (graphyte asks graphite-web for UTC times, and converts them).
    pub timestamp: u32,
    /// The value.
    pub value: Option<f64>,
}

/// A node of the metric tree, as `/metrics/find` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The full path: `app.server1.requests`.
    pub path: String,
    /// The last segment: `requests`.
    pub name: String,
    /// Whether it is a series (with points); otherwise a branch.
    pub leaf: bool,
    /// Whether it has nodes below it.
    pub has_children: bool,
}

/// A value of a tag, and how many series carry it (`/tags/<tag>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagValue {
    /// The value.
    pub value: String,
    /// Series with the tag at this value.
    pub count: u64,
}

/// A Graphite event: an annotation such as a deploy marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// graphite-web's id for it.
    pub id: u64,
    /// What happened, in a few words.
    pub what: String,
    /// When: Unix seconds, with a fraction.
    pub when: f64,
    /// Its tags.
    pub tags: Vec<String>,
    /// Anything more.
    pub data: String,
}

/// A render's series, from `format=json`.
pub(super) fn series(body: &[u8]) -> Result<Vec<Series>, String> {
    #[derive(Deserialize)]
    struct Raw {
        target: String,
        #[serde(default)]
        tags: BTreeMap<String, serde_json::Value>,
        datapoints: Vec<(Option<Number>, serde_json::Number)>,
    }
    let raw: Vec<Raw> = json(&finite_json(body))?;
    raw.into_iter()
        .map(|raw| {
            let points = raw
                .datapoints
                .into_iter()
                .map(|(value, time)| Ok((unix_seconds(&time)?, value.map(Number::value))))
                .collect::<Result<_, String>>()?;
            let tags = raw
                .tags
                .into_iter()
                .map(|(tag, value)| match value {
                    serde_json::Value::String(value) => (tag, value),
                    other => (tag, other.to_string()),
                })
                .collect();
            Ok(Series {
                name: raw.target,
                tags,
                points,
            })
        })
        .collect()
}

/// A value in a datapoint: a number, or an infinity [`finite_json`] turned into a word.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Finite(f64),
    Word(Infinite),
}

#[derive(Deserialize)]
enum Infinite {
    #[serde(rename = "inf")]
    Positive,
    #[serde(rename = "-inf")]
    Negative,
}

impl Number {
    fn value(self) -> f64 {
        match self {
            Number::Finite(value) => value,
            Number::Word(Infinite::Positive) => f64::INFINITY,
            Number::Word(Infinite::Negative) => f64::NEG_INFINITY,
        }
    }
}

/// A timestamp: whole seconds from 0 to `u32::MAX` (a float is taken when whole).
fn unix_seconds(time: &serde_json::Number) -> Result<u32, String> {
    let secs = time.as_u64().or_else(|| {
        time.as_f64()
            .filter(|t| t.fract() == 0.0 && *t >= 0.0 && *t <= f64::from(u32::MAX))
            .map(|t| t as u64)
    });
    secs.and_then(|secs| u32::try_from(secs).ok())
        .ok_or_else(|| format!("timestamp {time} is not a Unix time in seconds"))
}

/// `body` with what serde_json refuses and graphite-web writes made readable: a number too
/// large for a float (graphite-web writes infinities as `1e9999`) and the words `Infinity`
/// and `-Infinity` (other servers) become the strings `"inf"` and `"-inf"`; `NaN` becomes
/// `null`. Strings are left alone.
fn finite_json(body: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut at = 0;
    // Bytes of `body` before `copied` are in `out` (when it exists).
    let mut copied = 0;
    while at < body.len() {
        match body[at] {
            b'"' => {
                at += 1;
                while at < body.len() && body[at] != b'"' {
                    at += if body[at] == b'\\' { 2 } else { 1 };
                }
                at += 1;
            }
            b'-' | b'0'..=b'9' | b'I' | b'N' => {
                let end = at
                    + body[at..]
                        .iter()
                        .position(|b| !(b.is_ascii_alphanumeric() || b"+-.".contains(b)))
                        .unwrap_or(body.len() - at);
                let token = &body[at..end];
                let word: Option<&[u8]> = match token {
                    b"Infinity" => Some(b"\"inf\""),
                    b"-Infinity" => Some(b"\"-inf\""),
                    b"NaN" => Some(b"null"),
                    _ => match std::str::from_utf8(token)
                        .ok()
                        .and_then(|t| t.parse::<f64>().ok())
                    {
                        Some(value) if value == f64::INFINITY => Some(b"\"inf\""),
                        Some(value) if value == f64::NEG_INFINITY => Some(b"\"-inf\""),
                        _ => None,
                    },
                };
                if let Some(word) = word {
                    let out = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
                    out.extend_from_slice(&body[copied..at]);
                    out.extend_from_slice(word);
                    copied = end;
                }
                at = end;
            }
            _ => at += 1,
        }
    }
    match out {
        Some(mut out) => {
            out.extend_from_slice(&body[copied.min(body.len())..]);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(body),
    }
}

/// Rows of a render in `format=csv` with `tz=UTC`: `name,YYYY-MM-DD HH:MM:SS,value`, the
/// name quoted when it holds a comma, the value empty for none.
pub(super) fn csv_rows(body: &[u8]) -> Result<Vec<CsvRow>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the CSV is not UTF-8".to_owned())?;
    csv_records(text)
        .filter(|(_, record)| !record.trim().is_empty())
        .map(|(line, record)| {
            csv_row(record).map_err(|why| format!("CSV line {line}: {why}: {record:?}"))
        })
        .collect()
}

/// The records of a CSV text, each with the number of the line it starts on: a newline ends
/// a record, but not inside a quoted field (a quote toggles being inside; `""` twice).
fn csv_records(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text;
    let mut line = 1;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                quoted ^= c == '"';
                c == '\n' && !quoted
            })
            .map_or(rest.len(), |(at, _)| at);
        let record = &rest[..end];
        let start = line;
        line += record.matches('\n').count() + 1;
        rest = rest.get(end + 1..).unwrap_or_default();
        Some((start, record))
    })
}

fn csv_row(line: &str) -> Result<CsvRow, String> {
    let mut fields = csv_fields(line.trim_end_matches('\r'))?;
    if fields.len() != 3 {
        return Err(format!("{} fields, not 3", fields.len()));
    }
    let value = fields.pop().unwrap_or_default();
    let time = fields.pop().unwrap_or_default();
    let name = fields.pop().unwrap_or_default();
    let value = match value.as_str() {
        "" => None,
        text => match text.parse::<f64>() {
            Ok(value) if value.is_nan() => None,
            Ok(value) => Some(value),
            Err(_) => return Err(format!("value {text:?} is not a number")),
        },
    };
    Ok(CsvRow {
        name,
        timestamp: utc_seconds(&time)
            .ok_or_else(|| format!("time {time:?} is not YYYY-MM-DD HH:MM:SS"))?,
        value,
    })
}

/// The fields of a CSV record: commas separate; a field in double quotes may hold commas,
/// and `""` for a quote.
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field does not end".to_owned()),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err("text after a quoted field".to_owned());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, as Unix seconds.
fn utc_seconds(text: &str) -> Option<u32> {
    let b = text.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    u32::try_from(secs).ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The nodes `/metrics/find` lists (its default `treejson` form).
pub(super) fn nodes(body: &[u8]) -> Result<Vec<Node>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        id: String,
        text: String,
        leaf: Flag,
        #[serde(default)]
        allow_children: Option<Flag>,
        #[serde(default)]
        expandable: Option<Flag>,
    }
    let raw: Vec<Raw> = json(body)?;
    Ok(raw
        .into_iter()
        .map(|raw| Node {
            path: raw.id,
            name: raw.text,
            leaf: raw.leaf.0,
            has_children: raw.allow_children.or(raw.expandable).is_some_and(|f| f.0),
        })
        .collect())
}

/// A 0/1 flag of graphite-web's, or a boolean.
#[derive(Clone, Copy)]
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Flag, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Int(u64),
        }
        Ok(Flag(match Raw::deserialize(deserializer)? {
            Raw::Bool(flag) => flag,
            Raw::Int(flag) => flag != 0,
        }))
    }
}

/// The paths `/metrics/expand` gives: `{"results": [...]}`.
pub(super) fn expanded(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Raw {
        results: Vec<String>,
    }
    Ok(json::<Raw>(body)?.results)
}

/// The tags `/tags` lists: `[{"tag": "name"}, ...]`.
pub(super) fn tags(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Raw {
        tag: String,
    }
    Ok(json::<Vec<Raw>>(body)?
        .into_iter()
        .map(|raw| raw.tag)
        .collect())
}

/// A tag's values, from `/tags/<tag>`: `{"tag": "k", "values": [{"value", "count"}]}`.
pub(super) fn tag_values(body: &[u8]) -> Result<Vec<TagValue>, String> {
    #[derive(Deserialize)]
    struct Raw {
        values: Vec<RawValue>,
    }
    #[derive(Deserialize)]
    struct RawValue {
        value: String,
        count: u64,
    }
    Ok(json::<Raw>(body)?
        .values
        .into_iter()
        .map(|raw| TagValue {
            value: raw.value,
            count: raw.count,
        })
        .collect())
}

/// A list of strings: autocompletion, `findSeries`.
pub(super) fn strings(body: &[u8]) -> Result<Vec<String>, String> {
    json(body)
}

/// The events `/events/get_data` lists. Tags come as a list, or (before graphite-web 0.10)
/// as one space-separated string.
pub(super) fn events(body: &[u8]) -> Result<Vec<Event>, String> {
    #[derive(Deserialize)]
    struct Raw {
        id: u64,
        what: String,
        when: f64,
        #[serde(default)]
        tags: Option<Tags>,
        #[serde(default)]
        data: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        List(Vec<String>),
        Spaced(String),
    }
    let raw: Vec<Raw> = json(&finite_json(body))?;
    Ok(raw
        .into_iter()
        .map(|raw| Event {
            id: raw.id,
            what: raw.what,
            when: raw.when,
            tags: match raw.tags {
                Some(Tags::List(tags)) => tags,
                Some(Tags::Spaced(tags)) => tags.split_whitespace().map(str::to_owned).collect(),
                None => Vec::new(),
            },
            data: raw.data.unwrap_or_default(),
        })
        .collect())
}

/// graphite-web's own message in an error answer: its JSON `error` field, or the start of
/// its text with HTML tags taken out.
pub(super) fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Raw {
        error: String,
    }
    if let Ok(raw) = serde_json::from_slice::<Raw>(body) {
        return shorten(&raw.error);
    }
    let text = String::from_utf8_lossy(body);
    let mut plain = String::with_capacity(text.len().min(1024));
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                plain.push(' ');
            }
            _ if !in_tag => plain.push(c),
            _ => {}
        }
    }
    shorten(&plain.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The first 300 characters, on one line.
fn shorten(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|err| {
        let start = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        format!("{err} (the answer starts {start:?})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_render_reads_names_tags_values_nulls_and_timestamps() {
        let body = br#"[{"target": "a.b", "tags": {"name": "a.b"}, "datapoints": [[42.0, 1700000000], [null, 1700000001], [1.5, 1700000002]]}]"#;
        assert_eq!(
            series(body),
            Ok(vec![Series {
                name: "a.b".into(),
                tags: [("name".to_owned(), "a.b".to_owned())].into(),
                points: vec![
                    (1_700_000_000, Some(42.0)),
                    (1_700_000_001, None),
                    (1_700_000_002, Some(1.5))
                ],
            }])
        );
    }

    #[test]
    fn infinities_written_as_1e9999_or_infinity_are_read_as_infinities() {
        let body = br#"[{"target": "x", "datapoints": [[1e9999, 1], [-1e9999, 2], [Infinity, 3], [-Infinity, 4], [NaN, 5], [1e308, 6]]}]"#;
        let points = &series(body).unwrap()[0].points;
        assert_eq!(
            points,
            &[
                (1, Some(f64::INFINITY)),
                (2, Some(f64::NEG_INFINITY)),
                (3, Some(f64::INFINITY)),
                (4, Some(f64::NEG_INFINITY)),
                (5, None),
                (6, Some(1e308)),
            ]
        );
    }

    #[test]
    fn a_name_that_looks_like_an_infinity_stays_as_it_is() {
        let body = br#"[{"target": "Infinity 1e9999 \" NaN", "datapoints": []}]"#;
        assert_eq!(series(body).unwrap()[0].name, r#"Infinity 1e9999 " NaN"#);
    }

    #[test]
    fn a_series_without_tags_has_none() {
        let body = br#"[{"target": "x", "datapoints": [[1, 1]]}]"#;
        assert!(series(body).unwrap()[0].tags.is_empty());
    }

    #[test]
    fn hostile_or_truncated_renders_are_refused_with_a_message() {
        for body in [
            &b""[..],
            b"[",
            b"<html>Server Error</html>",
            br#"[{"target": "x", "datapoints": [[1, 1], [2"#,
            br#"[{"target": "x", "datapoints": [[1, -1]]}]"#,
            br#"[{"target": "x", "datapoints": [[1, 4294967296]]}]"#,
            br#"[{"target": "x", "datapoints": [[1, 1.5]]}]"#,
            br#"[{"target": "x", "datapoints": [["1", 1]]}]"#,
            br#"[{"target": 5, "datapoints": []}]"#,
            br#"{"target": "x"}"#,
            b"\xff\xfe",
            b"[1e99999999999999999999999999999",
            b"\"unterminated \\",
        ] {
            assert!(series(body).is_err(), "{}", body.escape_ascii());
        }
    }

    #[test]
    fn csv_rows_read_names_utc_times_and_empty_values() {
        let body = b"a.b,2023-11-14 22:13:20,42.0\r\n\"sumSeries(a,b)\",2023-11-14 22:13:21,\na.b,2023-11-14 22:13:22,inf\n";
        assert_eq!(
            csv_rows(body),
            Ok(vec![
                CsvRow {
                    name: "a.b".into(),
                    timestamp: 1_700_000_000,
                    value: Some(42.0)
                },
                CsvRow {
                    name: "sumSeries(a,b)".into(),
                    timestamp: 1_700_000_001,
                    value: None
                },
                CsvRow {
                    name: "a.b".into(),
                    timestamp: 1_700_000_002,
                    value: Some(f64::INFINITY)
                },
            ])
        );
    }

    #[test]
    fn a_quoted_name_may_hold_a_newline_a_comma_and_a_quote() {
        let body = b"\"alias(a, \"\"x\nb\"\")\",2023-11-14 22:13:20,1\nc,2023-11-14 22:13:20,2\n";
        let rows = csv_rows(body).unwrap();
        assert_eq!(rows[0].name, "alias(a, \"x\nb\")");
        assert_eq!(rows[1].name, "c");
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn utc_times_convert_across_leap_days_and_the_epoch() {
        assert_eq!(utc_seconds("1970-01-01 00:00:00"), Some(0));
        assert_eq!(utc_seconds("2024-02-29 12:00:00"), Some(1_709_208_000));
        assert_eq!(utc_seconds("2106-02-07 06:28:15"), Some(u32::MAX));
        for bad in [
            "2023-02-29 00:00:00",
            "2106-02-07 06:28:16",
            "1969-12-31 23:59:59",
            "2023-1-01 00:00:00",
            "2023-01-01T00:00:00",
            "2023-13-01 00:00:00",
            "2023-01-01 24:00:00",
            "+023-01-01 00:00:00",
        ] {
            assert_eq!(utc_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn malformed_csv_rows_are_refused_with_their_line_number() {
        for (body, why) in [
            (&b"a.b,2023-11-14 22:13:20\n"[..], "2 fields"),
            (b"a.b,2023-11-14 22:13:20,x\n", "not a number"),
            (b"a.b,yesterday,1\n", "YYYY-MM-DD"),
            (b"\"a.b,2023-11-14 22:13:20,1\n", "does not end"),
            (b"\xff,2023-11-14 22:13:20,1\n", "UTF-8"),
        ] {
            let err = csv_rows(body).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
        assert!(
            csv_rows(b"ok,2023-11-14 22:13:20,1\nbad\n")
                .unwrap_err()
                .starts_with("CSV line 2")
        );
    }

    #[test]
    fn find_reads_paths_names_and_leaf_flags() {
        let body = br#"[{"text": "b", "id": "a.b", "allowChildren": 0, "expandable": 0, "leaf": 1}, {"text": "c", "id": "a.c", "allowChildren": 1, "expandable": 1, "leaf": 0}]"#;
        assert_eq!(
            nodes(body),
            Ok(vec![
                Node {
                    path: "a.b".into(),
                    name: "b".into(),
                    leaf: true,
                    has_children: false
                },
                Node {
                    path: "a.c".into(),
                    name: "c".into(),
                    leaf: false,
                    has_children: true
                },
            ])
        );
    }

    #[test]
    fn tags_values_and_lists_of_strings_are_read() {
        assert_eq!(
            tags(br#"[{"tag": "env"}, {"tag": "name"}]"#),
            Ok(vec!["env".into(), "name".into()])
        );
        assert_eq!(
            tag_values(br#"{"tag": "env", "values": [{"count": 2, "value": "prod"}]}"#),
            Ok(vec![TagValue {
                value: "prod".into(),
                count: 2
            }])
        );
        assert_eq!(strings(br#"["a", "b"]"#), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(expanded(br#"{"results": ["a.b"]}"#), Ok(vec!["a.b".into()]));
    }

    #[test]
    fn events_read_tags_as_a_list_or_a_spaced_string() {
        let body = br#"[{"id": 1, "what": "deploy", "when": 1700000000.5, "tags": ["app", "v2"], "data": "ok"}, {"id": 2, "what": "old", "when": 1700000001, "tags": "a b"}]"#;
        let events = events(body).unwrap();
        assert_eq!(
            events[0],
            Event {
                id: 1,
                what: "deploy".into(),
                when: 1_700_000_000.5,
                tags: vec!["app".into(), "v2".into()],
                data: "ok".into()
            }
        );
        assert_eq!(events[1].tags, ["a", "b"]);
        assert_eq!(events[1].data, "");
    }

    #[test]
    fn an_error_answer_gives_graphite_webs_message_in_one_short_line() {
        assert_eq!(error_message(br#"{"error": "bad expr"}"#), "bad expr");
        assert_eq!(
            error_message(b"<h1>Server Error (500)</h1>\n<p>x</p>"),
            "Server Error (500) x"
        );
        assert_eq!(error_message(&b"x".repeat(1000)).chars().count(), 301);
    }
}
