//! What to read: [`Query`] (targets, a time range, a point budget) and [`Time`].

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::Error;

/// A point in time as graphite-web reads it in `from` and `until`.
///
/// Made from Unix seconds, a [`SystemTime`], a [`Duration`] ago, or parsed from any of
/// graphite-web's own forms: `now`, relative offsets such as `-2days`, `-30min` or `-1w`,
/// Unix seconds, `HH:MM_YYYYMMDD`, `YYYYMMDD`, `MM/DD/YY` and at(1) phrases such as
/// `noon+yesterday` (graphyte asks graphite-web to read these in UTC). Relative offsets are
/// checked here, since graphite-web answers a bad one with a bare server error: `-5m` is
/// refused (graphite-web's minutes are `min`, its months `mon`).
///
/// ```
/// use graphyte::render::Time;
/// use std::time::Duration;
///
/// let from: Time = "-2days".parse()?;
/// assert_eq!(from.as_str(), "-2days");
/// assert_eq!(Time::from(1_700_000_000).as_str(), "1700000000");
/// assert_eq!(Time::ago(Duration::from_secs(90)).as_str(), "-90s");
/// assert!("-5m".parse::<Time>().is_err());
/// # Ok::<(), graphyte::render::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Time(String);

impl Time {
    /// The current time, as graphite-web reads it when answering.
    pub fn now() -> Time {
        Time("now".to_owned())
    }

    /// `ago` before graphite-web's now, in whole seconds.
    pub fn ago(ago: Duration) -> Time {
        Time(format!("-{}s", ago.as_secs()))
    }

    /// The text sent to graphite-web.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<u32> for Time {
    /// Unix seconds.
    fn from(secs: u32) -> Time {
        Time(secs.to_string())
    }
}

impl From<SystemTime> for Time {
    /// Whole Unix seconds; a time before 1970 is read as 1970.
    fn from(time: SystemTime) -> Time {
        let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Time(secs.to_string())
    }
}

impl FromStr for Time {
    type Err = Error;

    /// # Errors
    ///
    /// [`Error::Config`] for an empty text, whitespace or a non-ASCII character, and for a
    /// relative offset whose unit graphite-web does not know.
    fn from_str(text: &str) -> Result<Time, Error> {
        let refuse = |why: &str| Err(Error::Config(format!("time '{text}': {why}")));
        if text.is_empty() {
            return refuse("empty");
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return refuse("only printable ASCII without spaces is a graphite-web time");
        }
        if let Some(offset) = text.strip_prefix(['-', '+']) {
            let digits = offset.bytes().take_while(u8::is_ascii_digit).count();
            let unit = &offset[digits..];
            if digits > 0 && !offset_unit(unit) {
                return refuse(
                    "unknown unit: graphite-web takes s, min, h, d, w, mon and y \
                     (e.g. -30min, -2days)",
                );
            }
        }
        Ok(Time(text.to_owned()))
    }
}

/// Whether graphite-web reads `unit` as an offset's unit: it goes by the unit's start.
fn offset_unit(unit: &str) -> bool {
    ["s", "min", "h", "d", "w", "mon", "y"]
        .iter()
        .any(|start| unit.starts_with(start))
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`Client::render`](super::Client::render) and its siblings ask for: one or more
/// targets (any Graphite target expression: a path, a glob, `sumSeries(app.*.requests)`,
/// `seriesByTag('env=prod')`), a time range (graphite-web's default: the last 24 hours) and
/// an optional budget of points per series.
///
/// ```
/// use graphyte::render::{Query, Time};
///
/// let query = Query::new("app.*.requests")
///     .target("sumSeries(app.*.errors)")
///     .from("-2days".parse::<Time>()?)
///     .until(Time::now())
///     .max_data_points(500);
/// assert_eq!(query.targets().len(), 2);
/// # Ok::<(), graphyte::render::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a query does nothing until a client renders it"]
pub struct Query {
    targets: Vec<String>,
    from: Option<Time>,
    until: Option<Time>,
    max_data_points: Option<u32>,
}

impl Query {
    /// A query of one target.
    pub fn new(target: impl Into<String>) -> Query {
        Query {
            targets: vec![target.into()],
            from: None,
            until: None,
            max_data_points: None,
        }
    }

    /// Adds a target.
    pub fn target(mut self, target: impl Into<String>) -> Query {
        self.targets.push(target.into());
        self
    }

    /// From when (graphite-web's `from`, exclusive).
    pub fn from(mut self, time: impl Into<Time>) -> Query {
        self.from = Some(time.into());
        self
    }

    /// Until when (graphite-web's `until`).
    pub fn until(mut self, time: impl Into<Time>) -> Query {
        self.until = Some(time.into());
        self
    }

    /// At most `points` points per series: graphite-web consolidates (averages, by default)
    /// neighbouring points to fit.
    pub fn max_data_points(mut self, points: u32) -> Query {
        self.max_data_points = Some(points);
        self
    }

    /// The targets, in order.
    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    /// The form fields of a render in `format`.
    pub(super) fn fields(&self, format: &str) -> Vec<(&'static str, String)> {
        let mut fields: Vec<(&'static str, String)> =
            self.targets.iter().map(|t| ("target", t.clone())).collect();
        if let Some(from) = &self.from {
            fields.push(("from", from.0.clone()));
        }
        if let Some(until) = &self.until {
            fields.push(("until", until.0.clone()));
        }
        if let Some(points) = self.max_data_points {
            fields.push(("maxDataPoints", points.to_string()));
        }
        fields.push(("format", format.to_owned()));
        // Absolute times (`04:00_20261122`) are read in this zone, and CSV times written in
        // it: UTC, whatever the server's own zone.
        fields.push(("tz", "UTC".to_owned()));
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphite_webs_time_forms_are_taken_as_written() {
        for text in [
            "now",
            "-2days",
            "-30min",
            "-1h",
            "-1w",
            "-3mon",
            "-1y",
            "-10s",
            "+1d",
            "1700000000",
            "04:00_20261122",
            "20261122",
            "11/22/26",
            "noon+yesterday",
        ] {
            assert_eq!(text.parse::<Time>().map(|t| t.0), Ok(text.to_owned()));
        }
    }

    #[test]
    fn an_offset_in_an_unknown_unit_is_refused_with_the_units_graphite_web_takes() {
        for text in ["-5m", "-5", "-5x", "-5mi"] {
            let err = text.parse::<Time>().unwrap_err().to_string();
            assert!(err.contains("s, min, h, d, w, mon and y"), "{text}: {err}");
        }
    }

    #[test]
    fn an_empty_spaced_or_non_ascii_time_is_refused() {
        for text in ["", "noon yesterday", "-2jours\u{e9}"] {
            assert!(
                matches!(text.parse::<Time>(), Err(Error::Config(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_query_sends_its_targets_range_and_budget_as_form_fields() {
        let query = Query::new("a.*")
            .target("sumSeries(b.*)")
            .from(Time::from(100))
            .until(Time::now())
            .max_data_points(7);
        let fields = query.fields("json");
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            fields,
            [
                ("target", "a.*"),
                ("target", "sumSeries(b.*)"),
                ("from", "100"),
                ("until", "now"),
                ("maxDataPoints", "7"),
                ("format", "json"),
                ("tz", "UTC"),
            ]
        );
    }
}
