//! Reading metrics back from graphite-web (feature `render`): the series a target selects,
//! as JSON or CSV, graphite-web's own PNG, the metric tree, the tag database, and events.
//!
//! ```no_run
//! use graphyte::render::{Client, Query, Time};
//!
//! let graphite = Client::new("http://127.0.0.1:8080")?;
//! let query = Query::new("sumSeries(app.*.requests)").from("-2days".parse::<Time>()?).until("-1days".parse::<Time>()?);
//! for series in graphite.render(&query)? {
//!     for (timestamp, value) in &series.points {
//!         println!("{} {timestamp} {value:?}", series.name);
//!     }
//! }
//! # Ok::<(), graphyte::render::Error>(())
//! ```
//!
//! Requests are blocking, each bounded by the client's timeout; errors say whether the
//! server could not be reached, was too slow, refused the credentials, answered an error
//! (with its message), or sent something that is not graphite-web's.

mod client;
mod error;
mod query;
mod response;

pub use client::{Client, ClientBuilder, NewEvent};
pub use error::Error;
pub use query::{Query, Time};
pub use response::{CsvRow, Event, Node, Series, TagValue};

/// Reads `answer` as each kind of answer; how many read (for the fuzz target).
#[cfg(any(test, feature = "bench-internals"))]
pub(crate) fn read_each_kind(answer: &[u8]) -> usize {
    [
        response::series(answer).is_ok(),
        response::csv_rows(answer).is_ok(),
        response::nodes(answer).is_ok(),
        response::expanded(answer).is_ok(),
        response::tags(answer).is_ok(),
        response::tag_values(answer).is_ok(),
        response::strings(answer).is_ok(),
        response::events(answer).is_ok(),
        !response::error_message(answer).is_empty(),
    ]
    .into_iter()
    .filter(|&read| read)
    .count()
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Any bytes, JSON-like or not: every reader answers, none panics.
        #[test]
        fn no_answer_makes_a_reader_panic(
            answer in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"[]{}\",:0123456789.-eE+INaftrulnsx \\\n".to_vec()),
                    proptest::num::u8::ANY,
                ],
                0..200,
            )
        ) {
            super::read_each_kind(&answer);
        }

        /// Almost-valid renders (a valid one cut anywhere, or with a byte changed): no panic.
        #[test]
        fn a_render_cut_or_changed_anywhere_makes_no_reader_panic(cut in 0usize..120, at in 0usize..120, byte in proptest::num::u8::ANY) {
            let mut answer = br#"[{"target": "a.b", "tags": {"name": "a.b"}, "datapoints": [[1e9999, 1700000000], [null, 1700000001], [-2.5, 1]]}]"#.to_vec();
            let at = at.min(answer.len() - 1);
            answer[at] = byte;
            answer.truncate(cut.min(answer.len()));
            super::read_each_kind(&answer);
        }
    }
}
