//! Properties of the encoder and the parser over generated input, hostile characters
//! included: every accepted metric makes exactly one line, and the parser reads back what
//! was sent.

mod support;

use graphyte::{Metric, Sender, Timestamp, Value, parse_line};
use proptest::prelude::*;
use support::Capture;

/// Text mostly made of what names are made of, with the characters that break lines mixed in.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(
        "[a-z0-9._;=~!^{{}}\"\\- \\t\\n\\r\\x00\\x7fé\u{a0}\u{2028}]{{0,{max}}}"
    ))
    .unwrap()
}

/// A value, and whether it was an `f32` (written in `f32`'s shortest form, so it reads back
/// equal as an `f32`).
fn value() -> impl Strategy<Value = (Value, bool)> {
    prop_oneof![
        any::<i64>().prop_map(|v| (Value::from(v), false)),
        any::<u64>().prop_map(|v| (Value::from(v), false)),
        any::<f64>().prop_map(|v| (Value::from(v), false)),
        any::<f32>().prop_map(|v| (Value::from(v), true)),
    ]
}

fn same_value(read: Value, sent: (Value, bool)) -> bool {
    match sent {
        (sent, true) => read.as_f64() as f32 == sent.as_f64() as f32,
        (sent, false) => read == sent,
    }
}

fn timestamp() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        Just(None),
        (1i64..=u32::MAX as i64).prop_map(Some),
        any::<i64>().prop_map(Some),
    ]
}

fn sender(capture: &Capture, default_tags: &[(String, String)]) -> Option<Sender> {
    prefixed_sender(capture, None, default_tags)
}

fn prefixed_sender(
    capture: &Capture,
    prefix: Option<&str>,
    default_tags: &[(String, String)],
) -> Option<Sender> {
    let mut builder = Sender::builder("unused")
        .synchronous()
        .socket(capture.clone());
    if let Some(prefix) = prefix {
        builder = builder.prefix(prefix);
    }
    for (k, v) in default_tags {
        builder = builder.tag(k, v);
    }
    builder.build().ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_accepted_metric_is_exactly_one_line_the_parser_reads_back(
        // No prefix, a plausible one, or anything (`{`, `~`, `"` included).
        prefix in prop_oneof![Just(None), "[a-z]{1,4}(\\.[a-z{~]{1,3}){0,2}".prop_map(Some), text(8).prop_map(Some)],
        // Half plausible names, half anything.
        name in prop_oneof!["[a-z~]{1,6}(\\.[a-zé0-9_~=\"{}-]{1,6}){0,3}", text(24)],
        value in value(),
        stamp in timestamp(),
        tags in prop::collection::vec(prop_oneof![("[a-z]{1,4}", "[a-z0-9=.]{1,4}"), (text(6), text(6))], 0..3),
        default_tags in prop::collection::vec(("[a-z]{1,3}", "[a-z0-9]{1,3}"), 0..2),
    ) {
        let capture = Capture::default();
        let Some(sender) = prefixed_sender(&capture, prefix.as_deref(), &default_tags) else { return Ok(()) };
        let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut metric = Metric::new(name.clone(), value.0).tags(&tag_refs);
        // The path Carbon reads: the prefix and the name, joined.
        let path = match &prefix {
            Some(prefix) => format!("{prefix}.{name}"),
            None => name.clone(),
        };
        if let Some(stamp) = stamp {
            metric = metric.timestamp(stamp);
        }
        let bytes = capture.take();
        prop_assert!(bytes.is_empty());
        match sender.try_send(metric) {
            Err(err) => {
                prop_assert!(err.is_invalid_input(), "{err:?}");
                prop_assert!(capture.take().is_empty(), "a refused metric wrote bytes");
            }
            Ok(()) => {
                let bytes = capture.take();
                prop_assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
                prop_assert_eq!(bytes.last(), Some(&b'\n'));
                let line = parse_line(&bytes).map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&bytes))))?;
                prop_assert_eq!(line.name(), path.as_str());
                prop_assert!(same_value(line.value(), value), "{:?} read back as {:?}", value.0, line.value());
                if let Some(stamp) = stamp {
                    prop_assert_eq!(line.timestamp(), Some(stamp as u32));
                }
                // Tags: the defaults overridden by the call's own, sorted by name.
                let mut expected: Vec<(&str, &str)> = Vec::new();
                for (k, v) in default_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(tag_refs.iter().copied()) {
                    expected.retain(|(key, _)| *key != k);
                    expected.push((k, v));
                }
                expected.sort();
                prop_assert_eq!(line.tags(), expected.as_slice());
            }
        }
    }

    #[test]
    fn a_line_the_parser_accepts_is_sent_as_the_same_line_in_carbons_form(
        name in "[a-z]{1,5}(\\.[a-z0-9_-]{1,5}){0,3}",
        tags in prop::collection::btree_map("[a-z]{1,4}", "[a-z0-9=.]{1,4}", 0..3),
        value in value(),
        stamp in 1u32..,
    ) {
        prop_assume!(value.0.as_f64().is_finite());
        let capture = Capture::default();
        let sender = sender(&capture, &[]).unwrap();
        let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        sender.try_send(Metric::new(name, value.0).tags(&tag_refs).timestamp(stamp)).unwrap();
        let first = capture.take();
        let line = parse_line(&first).unwrap();
        prop_assert_eq!(line.timestamp(), Some(stamp));
        sender.try_send(line.to_metric()).unwrap();
        prop_assert_eq!(capture.take(), first, "parse then send reproduces the line");
    }

    #[test]
    fn the_parser_never_panics_and_accepts_only_well_formed_lines(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(line) = parse_line(&bytes) {
            let text = std::str::from_utf8(&bytes).unwrap();
            prop_assert!(!text.trim_end_matches('\n').contains(['\n', '\r', '\0']));
            prop_assert!(line.value().as_f64().is_finite());
        }
    }

    #[test]
    fn any_float_timestamp_is_either_refused_or_rounded_down(t in any::<f64>()) {
        let capture = Capture::default();
        let sender = sender(&capture, &[]).unwrap();
        let result = sender.try_send(Metric::new("t", 1).timestamp(Timestamp::from(t)));
        if result.is_ok() {
            let bytes = capture.take();
            let line = parse_line(&bytes).unwrap();
            prop_assert_eq!(f64::from(line.timestamp().unwrap()), t.floor());
        } else {
            prop_assert!(!(1.0..4_294_967_296.0).contains(&t));
        }
    }
}
