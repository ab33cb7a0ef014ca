//! The name encoder (`NameEncoder`, `unescape`, `split_escaped`): whatever text it is given,
//! each mode writes a path or tag value the core validator accepts, the lossy modes always
//! do, and `Escape` gives the text back. Properties over any Unicode (hostile characters
//! mixed in), then named examples.

use graphyte::{
    Error, MAX_LAST_SEGMENT_LEN, MAX_PATH_LEN, MAX_SEGMENT_LEN, Metric, NameEncoder, Sender,
    parse_line, split_escaped, unescape,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

const MODES: [NameEncoder; 3] = [
    NameEncoder::Escape,
    NameEncoder::Strict,
    NameEncoder::Compatible,
];

const TS: u32 = 1_700_000_000;

/// What breaks names and lines, and what encoders treat specially.
const HOSTILE: &[char] = &[
    '.', '~', '"', '}', '{', ' ', '\t', '\n', '\r', '\0', '\x7f', '/', '\\', '%', ';', '=', ':',
    ',', '*', '?', '(', ')', '[', ']', '\'', '!', '^', '@', '&', '#', '\u{85}', '\u{a0}',
    '\u{2028}', '\u{3000}', '\u{200b}', '\u{feff}', 'é', 'ü', '東', '京', '😀', '_', '-',
];

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        4 => select(HOSTILE),
        3 => prop::char::range('a', 'z'),
    ]
}

/// Any text of up to `max` characters: mixed characters, a few named troublemakers, or a long
/// run of one character.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        8 => vec(any_char(), 0..=max).prop_map(String::from_iter),
        1 => select(&["", "\"}", "{a=\"b\"}", "~", "~a", ".", "..", "%", "%%", "%25", " "][..])
            .prop_map(String::from),
        1 => (any_char(), 0..=max).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

/// One to eight parts of up to `max` characters each.
fn parts(max: usize) -> impl Strategy<Value = Vec<String>> {
    vec(text(max), 1..=8)
}

/// A moderate case count, and no regression files: this file runs in a few seconds and
/// writes nothing.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Checks `path` with the core validator twice: as a plaintext line the parser reads back
/// with the same name, and through a dry-run sender, which must write exactly that line.
fn assert_valid_path(path: &str) -> Result<(), TestCaseError> {
    let line = format!("{path} 1 {TS}");
    let parsed = parse_line(line.as_bytes())
        .map_err(|err| TestCaseError::fail(format!("parse_line({line:?}): {err}")))?;
    prop_assert_eq!(parsed.name(), path);
    prop_assert!(parsed.tags().is_empty());
    let dry = Sender::builder("unused").dry_run().unwrap();
    dry.sender()
        .try_send(Metric::new(path.to_owned(), 1).timestamp(TS))
        .map_err(|err| TestCaseError::fail(format!("try_send({path:?}): {err}")))?;
    prop_assert_eq!(String::from_utf8(dry.take()).unwrap(), format!("{line}\n"));
    Ok(())
}

/// Checks `value` as a tag value through a dry-run sender and the parser.
fn assert_valid_tag_value(value: &str) -> Result<(), TestCaseError> {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let tags = [("k", value)];
    dry.sender()
        .try_send(Metric::new("a.b", 1).timestamp(TS).tags(&tags))
        .map_err(|err| TestCaseError::fail(format!("tag value {value:?}: {err}")))?;
    let bytes = dry.take();
    prop_assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        format!("a.b;k={value} 1 {TS}\n")
    );
    let line = parse_line(&bytes).map_err(|err| TestCaseError::fail(err.to_string()))?;
    prop_assert_eq!(line.tags(), &[("k", value)][..]);
    Ok(())
}

/// Whether `Escape`'s join must succeed: every escaped part within its segment limit (251
/// bytes for the last, 255 for the others) and the path within `MAX_PATH_LEN`.
fn escaped_parts_fit(parts: &[String]) -> bool {
    let escaped: Vec<String> = parts
        .iter()
        .map(|p| NameEncoder::Escape.part(p).into_owned())
        .collect();
    let last = escaped.len() - 1;
    let segments_fit = escaped.iter().enumerate().all(|(i, e)| {
        let max = if i == last {
            MAX_LAST_SEGMENT_LEN
        } else {
            MAX_SEGMENT_LEN
        };
        e.len() <= max
    });
    let path_len = escaped.iter().map(String::len).sum::<usize>() + last;
    segments_fit && path_len <= MAX_PATH_LEN
}

// Eight parts of up to 300 characters each, through three modes and a dry-run sender each:
// fewer cases, so the file stays quick.
proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn every_modes_joined_path_passes_the_core_validator_whenever_join_is_ok(
        // Short parts too, so that Escape's join is often Ok.
        parts in prop_oneof![parts(40), parts(300)],
    ) {
        for mode in MODES {
            if let Ok(path) = mode.join(&parts) {
                assert_valid_path(&path).map_err(|err| {
                    TestCaseError::fail(format!("{mode:?} joined {parts:?} into {path:?}: {err}"))
                })?;
            }
        }
    }

    #[test]
    fn strict_and_compatible_join_always_succeed_for_up_to_eight_parts_of_300_chars(
        parts in parts(300),
    ) {
        for mode in [NameEncoder::Strict, NameEncoder::Compatible] {
            let path = mode.join(&parts).map_err(|err| {
                TestCaseError::fail(format!("{mode:?} refused {parts:?}: {err}"))
            })?;
            prop_assert_eq!(path.split('.').count(), parts.len(), "one segment per part");
            assert_valid_path(&path)?;
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn escape_join_is_ok_exactly_when_the_escaped_parts_fit_and_splits_back_to_the_parts(
        parts in prop_oneof![3 => parts(40), 1 => parts(300)],
    ) {
        let fits = escaped_parts_fit(&parts);
        match NameEncoder::Escape.join(&parts) {
            Ok(path) => {
                prop_assert!(fits, "joined {:?} although a part does not fit", parts);
                prop_assert!(path.is_ascii());
                prop_assert_eq!(split_escaped(&path).unwrap(), parts);
            }
            Err(err) => {
                prop_assert!(!fits, "refused {:?}, whose escaped parts fit: {}", parts, err);
                prop_assert!(matches!(err, Error::InvalidName { .. }), "{:?}", err);
            }
        }
    }

    #[test]
    fn escape_join_always_succeeds_and_round_trips_for_parts_of_up_to_20_chars(
        parts in parts(20),
    ) {
        // 20 characters of at most 4 UTF-8 bytes, 3 bytes each escaped: 240 <= 251.
        let path = NameEncoder::Escape.join(&parts).unwrap();
        prop_assert_eq!(split_escaped(&path).unwrap(), parts);
    }

    #[test]
    fn every_modes_part_alone_is_a_valid_name_when_it_fits_a_last_segment(part in text(300)) {
        for mode in MODES {
            let segment = mode.part(&part);
            prop_assert!(!segment.is_empty());
            prop_assert!(!segment.contains('.'), "{:?} wrote {:?}", mode, segment);
            if mode != NameEncoder::Escape {
                prop_assert!(segment.len() <= MAX_LAST_SEGMENT_LEN, "{:?}: {}", mode, segment.len());
            }
            if segment.len() <= MAX_LAST_SEGMENT_LEN {
                assert_valid_path(&segment)?;
            }
        }
    }

    #[test]
    fn escape_part_is_ascii_of_safe_bytes_and_percent_and_unescapes_to_the_text(part in text(300)) {
        let segment = NameEncoder::Escape.part(&part);
        prop_assert!(
            segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'%')),
            "{:?}", segment
        );
        prop_assert_eq!(unescape(&segment).unwrap(), part);
    }

    #[test]
    fn strict_part_is_one_safe_ascii_byte_per_character_until_cut(part in text(300)) {
        let segment = NameEncoder::Strict.part(&part);
        prop_assert!(
            segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')),
            "{:?}", segment
        );
        let chars = part.chars().count();
        if chars == 0 {
            prop_assert_eq!(segment.as_ref(), "_");
        } else if chars <= MAX_LAST_SEGMENT_LEN {
            prop_assert_eq!(segment.len(), chars);
            for (out, input) in segment.chars().zip(part.chars()) {
                prop_assert!(out == input || out == '_', "{:?} became {:?}", input, out);
            }
        } else {
            prop_assert_eq!(segment.len(), MAX_LAST_SEGMENT_LEN);
        }
    }

    #[test]
    fn compatible_part_keeps_letters_and_replaces_characters_only_with_underscores(
        part in text(60),
    ) {
        // Up to 60 characters of up to 4 bytes: never cut.
        let segment = NameEncoder::Compatible.part(&part);
        if part.is_empty() {
            prop_assert_eq!(segment.as_ref(), "_");
        } else {
            prop_assert_eq!(segment.chars().count(), part.chars().count());
            for (out, input) in segment.chars().zip(part.chars()) {
                prop_assert!(out == input || out == '_', "{:?} became {:?}", input, out);
                if input.is_alphabetic() && !input.is_whitespace() {
                    prop_assert_eq!(out, input, "a letter was replaced");
                }
            }
        }
    }

    #[test]
    fn every_modes_tag_value_is_accepted_as_a_tag_value_by_the_sender(value in text(300)) {
        for mode in MODES {
            let encoded = mode.tag_value(&value);
            assert_valid_tag_value(&encoded).map_err(|err| {
                TestCaseError::fail(format!("{mode:?} wrote {value:?} as {encoded:?}: {err}"))
            })?;
        }
    }

    #[test]
    fn escape_tag_value_round_trips_through_unescape(value in text(300)) {
        let encoded = NameEncoder::Escape.tag_value(&value);
        prop_assert!(
            encoded.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'%' | b'.' | b':')),
            "{:?}", encoded
        );
        prop_assert_eq!(unescape(&encoded).unwrap(), value);
    }
}

// Named examples.

/// `(mode, expected part, expected tag value)` for `text`, in every mode.
fn assert_encodes(text: &str, expected: [(&str, &str); 3]) {
    for (mode, (part, tag)) in MODES.into_iter().zip(expected) {
        assert_eq!(mode.part(text), part, "{mode:?}.part({text:?})");
        assert_eq!(mode.tag_value(text), tag, "{mode:?}.tag_value({text:?})");
        let path = mode.join(["app", text, "count"]).unwrap();
        assert_eq!(path, format!("app.{part}.count"));
        assert_valid_path(&path).unwrap();
        assert_valid_tag_value(tag).unwrap();
    }
    let path = NameEncoder::Escape.join(["app", text, "count"]).unwrap();
    assert_eq!(split_escaped(&path).unwrap(), ["app", text, "count"]);
    assert_eq!(
        unescape(&NameEncoder::Escape.tag_value(text)).unwrap(),
        text
    );
}

#[test]
fn a_host_name_with_dots_is_one_segment_in_every_mode() {
    assert_encodes(
        "web1.example.com",
        [
            ("web1%2Eexample%2Ecom", "web1.example.com"),
            ("web1_example_com", "web1.example.com"),
            ("web1_example_com", "web1.example.com"),
        ],
    );
    assert_eq!(
        NameEncoder::Escape
            .join(["hosts", "web1.example.com", "cpu"])
            .unwrap(),
        "hosts.web1%2Eexample%2Ecom.cpu"
    );
}

#[test]
fn a_url_is_one_segment_in_every_mode() {
    assert_encodes(
        "https://example.com/a b?q=1",
        [
            (
                "https%3A%2F%2Fexample%2Ecom%2Fa%20b%3Fq%3D1",
                "https:%2F%2Fexample.com%2Fa%20b%3Fq%3D1",
            ),
            ("https___example_com_a_b_q_1", "https:__example.com_a_b_q_1"),
            ("https:__example_com_a_b_q_1", "https://example.com/a_b?q=1"),
        ],
    );
}

#[test]
fn an_email_address_is_one_segment_in_every_mode() {
    assert_encodes(
        "jane@example.com",
        [
            ("jane%40example%2Ecom", "jane%40example.com"),
            ("jane_example_com", "jane_example.com"),
            ("jane@example_com", "jane@example.com"),
        ],
    );
    assert_eq!(
        split_escaped("users.jane%40example%2Ecom.logins").unwrap(),
        ["users", "jane@example.com", "logins"]
    );
}

#[test]
fn accented_text_is_escaped_replaced_or_kept() {
    assert_encodes(
        "Zürich",
        [
            ("Z%C3%BCrich", "Z%C3%BCrich"),
            ("Z_rich", "Z_rich"),
            ("Zürich", "Zürich"),
        ],
    );
    assert_encodes(
        "café crème",
        [
            ("caf%C3%A9%20cr%C3%A8me", "caf%C3%A9%20cr%C3%A8me"),
            ("caf__cr_me", "caf__cr_me"),
            ("café_crème", "café_crème"),
        ],
    );
}

#[test]
fn cjk_text_is_escaped_replaced_or_kept() {
    assert_encodes(
        "東京",
        [
            ("%E6%9D%B1%E4%BA%AC", "%E6%9D%B1%E4%BA%AC"),
            ("__", "__"),
            ("東京", "東京"),
        ],
    );
}

#[test]
fn the_empty_part_is_a_lone_percent_or_an_underscore() {
    assert_encodes("", [("%", "%"), ("_", "_"), ("_", "_")]);
    assert_eq!(unescape("%").unwrap(), "");
    assert_eq!(
        NameEncoder::Compatible.join(["app", "", "x y"]).unwrap(),
        "app._.x_y"
    );
    assert_eq!(
        NameEncoder::Escape.join(["", ""]).unwrap(),
        "%.%",
        "empty parts stay apart"
    );
    assert_eq!(split_escaped("%.%").unwrap(), ["", ""]);
}

#[test]
fn a_leading_tilde_and_an_openmetrics_label_set_are_defused() {
    assert_encodes(
        "~a~",
        [("%7Ea%7E", "%7Ea%7E"), ("_a_", "_a_"), ("_a~", "_a~")],
    );
    assert_encodes(
        "{a=\"b\"}",
        [
            ("%7Ba%3D%22b%22%7D", "%7Ba%3D%22b%22%7D"),
            ("_a__b__", "_a__b__"),
            ("_a__b__", "_a=_b__"),
        ],
    );
    assert_eq!(NameEncoder::Compatible.tag_value("~a;b"), "_a_b");
    assert_eq!(
        NameEncoder::Escape.tag_value("GET /login"),
        "GET%20%2Flogin"
    );
}

#[test]
fn a_part_of_300_characters_is_cut_with_a_hash_by_the_lossy_modes() {
    let long = "x".repeat(300);
    let other = format!("{}y", "x".repeat(299));
    for mode in [NameEncoder::Strict, NameEncoder::Compatible] {
        let cut = mode.part(&long);
        assert_eq!(cut.len(), MAX_LAST_SEGMENT_LEN, "{mode:?}");
        let (kept, hash) = cut.split_at(MAX_LAST_SEGMENT_LEN - 9);
        assert!(kept.bytes().all(|b| b == b'x'), "{mode:?}: {cut}");
        assert!(hash.starts_with('_'), "{mode:?}: {cut}");
        assert!(
            hash[1..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{mode:?}: {cut}"
        );
        assert_ne!(
            cut,
            mode.part(&other),
            "{mode:?}: different long parts collide"
        );
        assert_eq!(cut, mode.part(&long), "{mode:?}: the cut is stable");
        for parts in [[long.as_str(), "a"], ["a", long.as_str()]] {
            let path = mode.join(parts).unwrap();
            assert_valid_path(&path).unwrap();
        }
        let tag = mode.tag_value(&long);
        assert!(tag.len() <= MAX_LAST_SEGMENT_LEN);
        assert_valid_tag_value(&tag).unwrap();
    }
    // Multi-byte characters are cut on a character boundary.
    let wide = NameEncoder::Compatible.part(&"é".repeat(300)).into_owned();
    assert!(wide.len() <= MAX_LAST_SEGMENT_LEN);
    assert!(wide.starts_with(&"é".repeat(100)));
    assert_valid_path(&wide).unwrap();
}

#[test]
fn escape_join_refuses_a_part_of_300_characters_and_keeps_it_whole_otherwise() {
    let long = "x".repeat(300);
    assert_eq!(NameEncoder::Escape.part(&long), long);
    for parts in [[long.as_str(), "a"], ["a", long.as_str()]] {
        assert!(
            matches!(
                NameEncoder::Escape.join(parts),
                Err(Error::InvalidName { .. })
            ),
            "{parts:?}"
        );
    }
    assert_eq!(
        unescape(&NameEncoder::Escape.tag_value(&long)).unwrap(),
        long
    );
    assert_valid_tag_value(&NameEncoder::Escape.tag_value(&long)).unwrap();
}

#[test]
fn escape_join_takes_segments_up_to_their_limits_and_refuses_one_byte_more() {
    let x = |n: usize| "x".repeat(n);
    let join = |parts: [&str; 2]| NameEncoder::Escape.join(parts);
    assert!(join([&x(MAX_SEGMENT_LEN), "a"]).is_ok());
    assert!(join([&x(MAX_SEGMENT_LEN + 1), "a"]).is_err());
    assert!(join(["a", &x(MAX_LAST_SEGMENT_LEN)]).is_ok());
    assert!(join(["a", &x(MAX_LAST_SEGMENT_LEN + 1)]).is_err());
    // Measured escaped: 85 escaped bytes are 255 bytes, 84 of them 252.
    let dots = |n: usize| ".".repeat(n);
    assert!(join([&dots(85), "a"]).is_ok());
    assert!(join(["a", &dots(84)]).is_err());
    assert!(join(["a", &dots(83)]).is_ok());
}

#[test]
fn joining_no_parts_is_refused_in_every_mode() {
    for mode in MODES {
        assert!(
            matches!(
                mode.join(Vec::<String>::new()),
                Err(Error::InvalidName { .. })
            ),
            "{mode:?}"
        );
    }
}

#[test]
fn unescape_and_split_escaped_refuse_what_escape_never_writes() {
    for bad in ["%4", "%zz", "a%", "%FF", "%C3"] {
        assert!(
            matches!(unescape(bad), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
    }
    assert!(split_escaped("a.%zz.b").is_err());
    assert_eq!(split_escaped("a.b%2Ec").unwrap(), ["a", "b.c"]);
}
