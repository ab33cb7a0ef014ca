//! The pickle protocol, judged from outside: Python's own `pickle` reads graphyte's frames back
//! as exactly the intended points, with nothing but protocol-2 opcodes; a real carbon-cache's
//! pickle receiver stores every point of large batches, including a frame of exactly its 1 MiB
//! cap; and a write cut short resends whole frames (pickle) or whole lines (plaintext), each
//! point counted once.

mod support;

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graphyte::{DEFAULT_MAX_FRAME, Metric, Protocol, Sender, Value};
use support::{Carbon, recent_second};
// `Py`: a value as Python should read it back, an `int` or a `float`, type included.
use support::pickle::{PyNum as Py, unpickle_frame};

/// The Python that judges our frames: Debian's (the `python3` first on PATH is another).
const PYTHON: &str = "/usr/bin/python3";

/// A timestamp in BININT range (after 2^16, before 2^31).
const T: u32 = 1_700_000_000;

// ---------------------------------------------------------------------------------------------
// What a point should read back as, and Python's verdict on frames.

fn int(v: impl Into<i128>) -> Py {
    Py::Int(v.into())
}

fn float(v: f64) -> Py {
    Py::Float(v)
}

/// One point as intended: `(path, (timestamp, value))` in Python, the path a `str`.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    path: String,
    ts: u32,
    value: Py,
}

/// A metric to send, and the point it should arrive as.
type Case = (Metric<'static>, Expected);

/// A metric whose path is its name.
fn case(name: &str, value: impl Into<Value>, ts: u32, expected: Py) -> Case {
    let path = name.to_owned();
    tagged(name, &[], value, ts, &path, expected)
}

/// A metric with its own tags (and the sender's prefix and default tags), arriving at `path`.
fn tagged(
    name: &str,
    tags: &'static [(&'static str, &'static str)],
    value: impl Into<Value>,
    ts: u32,
    path: &str,
    expected: Py,
) -> Case {
    let metric = Metric::new(name.to_owned(), value).timestamp(ts).tags(tags);
    let expected = Expected {
        path: path.to_owned(),
        ts,
        value: expected,
    };
    (metric, expected)
}

fn pickle_builder() -> graphyte::Builder {
    Sender::builder("unused").protocol(Protocol::Pickle)
}

/// The frames a synchronous sender built by `builder` writes for `cases`, sent as one batch.
fn frames_of(builder: graphyte::Builder, cases: &[Case]) -> Vec<Vec<u8>> {
    let dry = builder.dry_run().unwrap();
    let outcome = dry
        .sender()
        .send_batch(cases.iter().map(|(metric, _)| metric.clone()));
    assert!(
        outcome.is_complete() && outcome.accepted == cases.len(),
        "every metric is accepted: {outcome:?}"
    );
    dry.take_frames()
}

fn expected_of(cases: &[Case]) -> Vec<Expected> {
    cases.iter().map(|(_, expected)| expected.clone()).collect()
}

/// Bytes an integer takes in a pickle: BININT1, BININT2, BININT, or LONG1 with the fewest
/// two's complement bytes.
fn int_len(v: i128) -> usize {
    if (0..1 << 8).contains(&v) {
        2
    } else if (0..1 << 16).contains(&v) {
        3
    } else if i32::try_from(v).is_ok() {
        5
    } else {
        let bytes = (1..=16)
            .find(|&n| (-(1i128 << (8 * n - 1))..(1i128 << (8 * n - 1))).contains(&v))
            .unwrap();
        2 + bytes
    }
}

/// Bytes a point adds to a frame's payload: BINUNICODE with its 4-byte length and the path,
/// the timestamp, the value, two TUPLE2.
fn point_len(path_len: usize, ts: u32, value: Py) -> usize {
    let value_len = match value {
        Py::Int(v) => int_len(v),
        Py::Float(_) => 9,
    };
    1 + 4 + path_len + int_len(ts.into()) + value_len + 2
}

/// A payload's bytes besides its points: PROTO 2, EMPTY_LIST, MARK, APPENDS, STOP.
const PAYLOAD_OVERHEAD: usize = 6;

/// The points of `points` as frames of at most `max_frame` payload bytes should hold them: in
/// order, each frame ended before the point that would take it over.
fn packed(points: &[Expected], max_frame: usize) -> Vec<Vec<Expected>> {
    let mut frames: Vec<Vec<Expected>> = Vec::new();
    let mut used = 0;
    for point in points {
        let len = point_len(point.path.len(), point.ts, point.value);
        if frames.is_empty() || used + len > max_frame {
            frames.push(Vec::new());
            used = PAYLOAD_OVERHEAD;
        }
        used += len;
        frames.last_mut().unwrap().push(point.clone());
    }
    frames
}

/// Hands `frames` and the points each should hold to Python, which checks that the length
/// prefix is the payload's length (and within `max_frame`), that the payload's opcodes are all
/// of protocol 2 or older and end in its last byte, and that `pickle.loads` gives exactly the
/// intended list of `(str, (int, int | float))` tuples, types and float signs included.
const JUDGE: &str = r#"
import json, math, pickle, pickletools, struct, sys

def same(got, want):
    if type(got) is not type(want):
        return False
    if type(want) is float:
        return got == want and math.copysign(1.0, got) == math.copysign(1.0, want)
    return got == want

data = json.load(sys.stdin)
problems = []
frames = [bytes.fromhex(h) for h in data["frames"]]
expected = data["expected"]
if len(frames) != len(expected):
    problems.append("%d frames, expected %d" % (len(frames), len(expected)))
for i, (frame, want) in enumerate(zip(frames, expected)):
    where = "frame %d" % i
    if len(frame) < 4:
        problems.append("%s: %d bytes, shorter than a length prefix" % (where, len(frame)))
        continue
    (length,) = struct.unpack(">I", frame[:4])
    payload = frame[4:]
    if length != len(payload):
        problems.append("%s: length prefix %d, payload %d bytes" % (where, length, len(payload)))
    if len(payload) > data["max_frame"]:
        problems.append("%s: payload %d bytes, over the cap of %d" % (where, len(payload), data["max_frame"]))
    try:
        ops = list(pickletools.genops(payload))
    except Exception as e:
        problems.append("%s: pickletools.genops failed: %r" % (where, e))
        continue
    for op, arg, pos in ops:
        if op.proto > 2:
            problems.append("%s: opcode %s at byte %d is from protocol %d" % (where, op.name, pos, op.proto))
    if ops[0][0].name != "PROTO" or ops[0][1] != 2:
        problems.append("%s: starts with %s %r, not PROTO 2" % (where, ops[0][0].name, ops[0][1]))
    if ops[-1][0].name != "STOP" or ops[-1][2] != len(payload) - 1:
        problems.append("%s: ends with %s at byte %d of %d" % (where, ops[-1][0].name, ops[-1][2], len(payload)))
    try:
        got = pickle.loads(payload)
    except Exception as e:
        problems.append("%s: pickle.loads failed: %r" % (where, e))
        continue
    if type(got) is not list:
        problems.append("%s: unpickled a %s, not a list" % (where, type(got).__name__))
        continue
    if len(got) != len(want):
        problems.append("%s: %d points, expected %d" % (where, len(got), len(want)))
    for j, (g, (path, ts, value)) in enumerate(zip(got, want)):
        ok = (type(g) is tuple and len(g) == 2 and type(g[0]) is str and g[0] == path
              and type(g[1]) is tuple and len(g[1]) == 2
              and same(g[1][0], ts) and same(g[1][1], value))
        if not ok:
            problems.append("%s, point %d: got %r, expected %r" % (where, j, g, (path, (ts, value))))
if problems:
    print("FAIL (%d problems)" % len(problems))
    print("\n".join(problems[:40]))
else:
    print("OK %d frames, %d points" % (len(frames), sum(len(w) for w in expected)))
"#;

/// Runs [`JUDGE`] in Debian's Python on `frames`, each expected to hold `expected`'s points of
/// the same index; fails with Python's diagnostics unless it says OK.
fn python_judges(max_frame: usize, frames: &[Vec<u8>], expected: &[Vec<Expected>]) {
    let mut input = String::with_capacity(frames.iter().map(|f| 2 * f.len()).sum::<usize>() + 64);
    let _ = write!(input, "{{\"max_frame\": {max_frame}, \"frames\": [");
    for (i, frame) in frames.iter().enumerate() {
        input.push_str(if i == 0 { "\"" } else { ", \"" });
        for byte in frame {
            let _ = write!(input, "{byte:02x}");
        }
        input.push('"');
    }
    input.push_str("], \"expected\": [");
    for (i, points) in expected.iter().enumerate() {
        input.push_str(if i == 0 { "[" } else { ", [" });
        for (j, point) in points.iter().enumerate() {
            if j > 0 {
                input.push_str(", ");
            }
            input.push('[');
            json_string(&point.path, &mut input);
            let _ = write!(input, ", {}, ", point.ts);
            match point.value {
                Py::Int(v) => {
                    let _ = write!(input, "{v}");
                }
                // `{:?}` keeps a float a float in JSON: `1.0`, `1e300`, `-0.0`.
                Py::Float(v) => {
                    assert!(v.is_finite());
                    let _ = write!(input, "{v:?}");
                }
            }
            input.push(']');
        }
        input.push(']');
    }
    input.push_str("]}");

    let mut child = Command::new(PYTHON)
        .arg("-c")
        .arg(JUDGE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("running {PYTHON} (Debian's python3 must be installed): {err}")
        });
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.starts_with("OK") && written.is_ok(),
        "Python's verdict ({}, input {written:?}):\n{stdout}\n{stderr}",
        out.status
    );
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Sends `cases` as one batch through a dry run of `builder` and has Python check the frames:
/// what they hold must be `cases` in order, in frames of at most `max_frame` bytes split
/// where [`packed`] says.
fn python_reads_back(builder: graphyte::Builder, max_frame: usize, cases: &[Case]) {
    let frames = frames_of(builder, cases);
    python_judges(max_frame, &frames, &packed(&expected_of(cases), max_frame));
}

// ---------------------------------------------------------------------------------------------
// Python reads our frames back as the intended points.

#[test]
fn small_and_32_bit_integers_unpickle_as_the_same_python_ints() {
    let values: [i64; 22] = [
        0,
        1,
        127,
        128,
        255,
        256,
        1000,
        65_535,
        65_536,
        65_537,
        1 << 24,
        i32::MAX as i64 - 1,
        i32::MAX as i64,
        -1,
        -128,
        -255,
        -256,
        -65_535,
        -65_536,
        -65_537,
        i32::MIN as i64 + 1,
        i32::MIN as i64,
    ];
    let mut cases: Vec<Case> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| case(&format!("ints.i64.v{i}"), v, T, int(v)))
        .collect();
    // Each integer type of Rust, at its extremes within 32 bits.
    cases.push(case("ints.u8", u8::MAX, T, int(u8::MAX)));
    cases.push(case("ints.i8", i8::MIN, T, int(i8::MIN)));
    cases.push(case("ints.u16", u16::MAX, T, int(u16::MAX)));
    cases.push(case("ints.i16", i16::MIN, T, int(i16::MIN)));
    cases.push(case("ints.i32", i32::MAX, T, int(i32::MAX)));
    cases.push(case("ints.u32.small", 7u32, T, int(7)));
    python_reads_back(pickle_builder(), DEFAULT_MAX_FRAME, &cases);
}

#[test]
fn integers_past_32_bits_unpickle_as_the_same_python_ints() {
    let mut cases = vec![
        case("long.2p31", 1i64 << 31, T, int(1i64 << 31)),
        case("long.m2p31m1", -(1i64 << 31) - 1, T, int(-(1i64 << 31) - 1)),
        case("long.u32max", u32::MAX, T, int(u32::MAX)),
        case("long.2p32", 1u64 << 32, T, int(1u64 << 32)),
        case("long.2p40", 1i64 << 40, T, int(1i64 << 40)),
        case("long.m2p40", -(1i64 << 40), T, int(-(1i64 << 40))),
        case("long.2p53p1", (1i64 << 53) + 1, T, int((1i64 << 53) + 1)),
        case("long.m2p53m1", -(1i64 << 53) - 1, T, int(-(1i64 << 53) - 1)),
        case("long.2p55", 1i64 << 55, T, int(1i64 << 55)),
        case("long.i64max", i64::MAX, T, int(i64::MAX)),
        case("long.i64maxm1", i64::MAX - 1, T, int(i64::MAX - 1)),
        case("long.i64min", i64::MIN, T, int(i64::MIN)),
        case("long.i64minp1", i64::MIN + 1, T, int(i64::MIN + 1)),
        case("long.2p63", 1u64 << 63, T, int(1u64 << 63)),
        case("long.u64max", u64::MAX, T, int(u64::MAX)),
        case("long.u64maxm1", u64::MAX - 1, T, int(u64::MAX - 1)),
        case("long.usize", usize::MAX, T, int(usize::MAX as u64)),
        case("long.isize", isize::MIN, T, int(isize::MIN as i64)),
    ];
    // Every byte length of LONG1, both signs: 2^(8n-1) needs n+1 bytes, -2^(8n-1) needs n.
    for n in 4..8u32 {
        let edge = 1i64 << (8 * n - 1);
        for v in [edge - 1, edge, -edge, -edge - 1] {
            cases.push(case(
                &format!("long.edge{n}.v{}", cases.len()),
                v,
                T,
                int(v),
            ));
        }
    }
    python_reads_back(pickle_builder(), DEFAULT_MAX_FRAME, &cases);
}

#[test]
fn negative_values_unpickle_with_their_sign() {
    let cases = [
        case("neg.int1", -1, T, int(-1)),
        case("neg.int300", -300, T, int(-300)),
        case("neg.int70000", -70_000, T, int(-70_000)),
        case("neg.int3e9", -3_000_000_000i64, T, int(-3_000_000_000i64)),
        case("neg.i64min", i64::MIN, T, int(i64::MIN)),
        case("neg.half", -0.5, T, float(-0.5)),
        case("neg.huge", -1e300, T, float(-1e300)),
        case("neg.tiny", -5e-324, T, float(-5e-324)),
        case("neg.max", f64::MIN, T, float(f64::MIN)),
        case("neg.zero", -0.0, T, float(-0.0)),
        case("neg.f32", -2.5f32, T, float(-2.5)),
        case("neg.f32zero", -0.0f32, T, float(-0.0)),
    ];
    python_reads_back(pickle_builder(), DEFAULT_MAX_FRAME, &cases);
}

#[test]
fn f64_values_unpickle_as_the_same_python_floats() {
    let values = [
        0.0,
        0.1,
        0.5,
        1.0,
        42.0,
        123_456.789,
        1e-5,
        1e16,
        2f64.powi(53),
        2f64.powi(53) + 2.0,
        1e300,
        1e-300,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        std::f64::consts::PI,
        -7.25,
    ];
    let cases: Vec<Case> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| case(&format!("floats.v{i}"), v, T, float(v)))
        .collect();
    python_reads_back(pickle_builder(), DEFAULT_MAX_FRAME, &cases);
}

#[test]
fn f32_values_unpickle_as_the_doubles_of_their_shortest_decimal_form() {
    // What plaintext writes for each f32, read as a double.
    let values: [(f32, f64); 10] = [
        (0.1, 0.1),
        (0.3, 0.3),
        (1.1, 1.1),
        (100.7, 100.7),
        (-2.5, -2.5),
        (16_777_216.0, 16_777_216.0),
        (f32::MAX, 3.402_823_5e38),
        (f32::MIN_POSITIVE, 1.175_494_4e-38),
        (1e-45, 1e-45),
        (0.0, 0.0),
    ];
    let cases: Vec<Case> = values
        .iter()
        .enumerate()
        .map(|(i, &(v, wide))| case(&format!("f32.v{i}"), v, T, float(wide)))
        .collect();
    python_reads_back(pickle_builder(), DEFAULT_MAX_FRAME, &cases);
}

#[test]
fn timestamps_before_and_after_2_pow_31_unpickle_as_the_same_python_ints() {
    let stamps: [u32; 11] = [
        1,
        255,
        256,
        65_535,
        65_536,
        T,
        (1 << 31) - 1,
        1 << 31,
        (1 << 31) + 1,
        4_000_000_000,
        u32::MAX,
    ];
    let cases: Vec<Case> = stamps
        .iter()
        .enumerate()
        .flat_map(|(i, &ts)| {
            [
                case(&format!("ts.int.v{i}"), 5, ts, int(5)),
                case(&format!("ts.float.v{i}"), 0.25, ts, float(0.25)),
            ]
        })
        .collect();
    python_reads_back(pickle_builder(), DEFAULT_MAX_FRAME, &cases);
}

#[test]
fn default_and_per_metric_tags_are_pickled_into_str_paths_sorted_by_tag_name() {
    let cases = [
        tagged("svc.req", &[], 1, T, "svc.req;env=prod", int(1)),
        tagged(
            "svc.req",
            &[("zone", "b"), ("host", "web1")],
            2,
            T,
            "svc.req;env=prod;host=web1;zone=b",
            int(2),
        ),
        tagged(
            "svc.req",
            &[("env", "dev")],
            3.5,
            T,
            "svc.req;env=dev",
            float(3.5),
        ),
        tagged(
            "svc.req",
            &[("aa", "1"), ("env", "test"), ("zz", "2")],
            4,
            T,
            "svc.req;aa=1;env=test;zz=2",
            int(4),
        ),
    ];
    python_reads_back(
        pickle_builder().tag("env", "prod"),
        DEFAULT_MAX_FRAME,
        &cases,
    );
}

#[test]
fn a_prefix_is_pickled_into_every_path() {
    let cases = [
        tagged("cpu", &[], 1, T, "app.web1.cpu", int(1)),
        tagged("mem.free", &[], 2.5, T, "app.web1.mem.free", float(2.5)),
        tagged(
            "queue",
            &[("q", "mail")],
            3,
            T,
            "app.web1.queue;q=mail",
            int(3),
        ),
    ];
    python_reads_back(
        pickle_builder().prefix("app.web1"),
        DEFAULT_MAX_FRAME,
        &cases,
    );
}

#[test]
fn non_ascii_names_unpickle_as_the_same_str_paths() {
    let cases = [
        case("héllo.wörld", 1, T, int(1)),
        case("指标.延迟", 2, T, int(2)),
        case("метрики.задержка", 3.25, T, float(3.25)),
        case("emoji.🚀.launch", 4, T, int(4)),
        case("mixed.ñ.日本.x", 5, T, int(5)),
        tagged(
            "städte.temp",
            &[("stadt", "zürich"), ("国", "瑞士")],
            6,
            T,
            "städte.temp;stadt=zürich;国=瑞士",
            int(6),
        ),
    ];
    python_reads_back(pickle_builder(), DEFAULT_MAX_FRAME, &cases);
}

/// Points that fill a frame's payload to exactly `payload` bytes: series `{base}.sNNN.xxx…`
/// (names `name_len` bytes long) of 100 points each, at `t0 - 100 ..= t0 - 1` with small int
/// values, then one point on `{base}.tail.xxx…`, its name as long as the bytes left need.
fn filling(base: &str, name_len: usize, payload: usize, t0: u32) -> Vec<Case> {
    let padded = |head: String, len: usize| {
        assert!(len > head.len(), "{head} fits in {len} bytes");
        head.clone() + &"x".repeat(len - head.len())
    };
    let tail_head = format!("{base}.tail.");
    // The last point needs room for a name at least this long.
    let shortest_tail = point_len(tail_head.len() + 1, t0, int(7));
    let mut cases = Vec::new();
    let mut used = PAYLOAD_OVERHEAD;
    loop {
        let i = cases.len();
        let name = padded(format!("{base}.s{:03}.", i / 100), name_len);
        let (ts, value) = (t0 - 100 + (i % 100) as u32, (i % 100) as i64);
        let len = point_len(name.len(), ts, int(value));
        if used + len + shortest_tail > payload {
            break;
        }
        cases.push(case(&name, value, ts, int(value)));
        used += len;
    }
    let tail_len = payload - used - point_len(0, t0, int(7));
    cases.push(case(&padded(tail_head, tail_len), 7, t0, int(7)));
    let total: usize = PAYLOAD_OVERHEAD
        + cases
            .iter()
            .map(|(_, e)| point_len(e.path.len(), e.ts, e.value))
            .sum::<usize>();
    assert_eq!(total, payload);
    cases
}

/// Payload length of each frame.
fn payload_lens(frames: &[Vec<u8>]) -> Vec<usize> {
    frames.iter().map(|f| f.len() - 4).collect()
}

/// A batch large enough for a synchronous sender to write in one chunk.
const ONE_CHUNK: usize = 1 << 20;

#[test]
fn a_batch_exactly_at_a_small_cap_is_one_frame_that_python_reads_whole() {
    let cap = 1024;
    let cases = filling("cap.small", 40, cap, T);
    let frames = frames_of(pickle_builder().max_frame(cap), &cases);
    assert_eq!(payload_lens(&frames), [cap]);
    python_judges(cap, &frames, &[expected_of(&cases)]);
}

#[test]
fn one_point_past_a_small_cap_starts_a_second_frame_with_it() {
    let cap = 1024;
    let mut cases = filling("cap.small", 40, cap, T);
    cases.push(case("cap.small.over", 9, T, int(9)));
    let frames = frames_of(pickle_builder().max_frame(cap), &cases);
    let over = point_len("cap.small.over".len(), T, int(9));
    assert_eq!(payload_lens(&frames), [cap, PAYLOAD_OVERHEAD + over]);
    let expected = expected_of(&cases);
    let (full, rest) = expected.split_at(cases.len() - 1);
    python_judges(cap, &frames, &[full.to_vec(), rest.to_vec()]);
}

#[test]
fn a_batch_exactly_at_the_default_1_mib_cap_is_one_frame_that_python_reads_whole() {
    let cases = filling("cap.mib", 200, DEFAULT_MAX_FRAME, T);
    assert!(cases.len() > 4000);
    let frames = frames_of(pickle_builder().batch_size(ONE_CHUNK), &cases);
    assert_eq!(payload_lens(&frames), [1_048_576]);
    python_judges(DEFAULT_MAX_FRAME, &frames, &[expected_of(&cases)]);
}

#[test]
fn one_point_past_the_default_1_mib_cap_starts_a_second_frame_with_it() {
    let mut cases = filling("cap.mib", 200, DEFAULT_MAX_FRAME, T);
    cases.push(case("cap.mib.over", 0.5, T, float(0.5)));
    let frames = frames_of(pickle_builder().batch_size(ONE_CHUNK), &cases);
    let over = point_len("cap.mib.over".len(), T, float(0.5));
    assert_eq!(
        payload_lens(&frames),
        [DEFAULT_MAX_FRAME, PAYLOAD_OVERHEAD + over]
    );
    let expected = expected_of(&cases);
    let (full, rest) = expected.split_at(cases.len() - 1);
    python_judges(DEFAULT_MAX_FRAME, &frames, &[full.to_vec(), rest.to_vec()]);
}

#[test]
fn a_mixed_batch_over_a_small_cap_is_split_into_frames_holding_every_point_in_order() {
    let cap = 256;
    let cases: Vec<Case> = (0..600u32)
        .map(|i| {
            let name = format!("split.{}.m{i}", "n".repeat((i % 37) as usize + 1));
            let ts = [T, 1 << 31, 4_000_000_000, 300][i as usize % 4];
            match i % 5 {
                0 => case(&name, i, ts, int(i)),
                1 => case(
                    &name,
                    -i64::from(i) * 1_000_003,
                    ts,
                    int(-i64::from(i) * 1_000_003),
                ),
                2 => case(
                    &name,
                    u64::MAX - u64::from(i),
                    ts,
                    int(u64::MAX - u64::from(i)),
                ),
                3 => case(&name, f64::from(i) / 7.0, ts, float(f64::from(i) / 7.0)),
                _ => case(
                    &name,
                    i as f32 * 0.1,
                    ts,
                    float(format!("{}", i as f32 * 0.1).parse().unwrap()),
                ),
            }
        })
        .collect();
    let frames = frames_of(
        pickle_builder().max_frame(cap).batch_size(ONE_CHUNK),
        &cases,
    );
    assert!(frames.len() > 50, "{} frames", frames.len());
    python_judges(cap, &frames, &packed(&expected_of(&cases), cap));
}

// ---------------------------------------------------------------------------------------------
// A real carbon-cache's pickle receiver stores what we send.

/// 100 series `{base}.sNN` of 100 points each, at `t0 - 100 ..= t0 - 1`, their values a mix
/// of small, negative and past-32-bit ints and floats; point by point, interleaved across
/// series as a real program would send them.
fn hundred_series(base: &str, t0: u32) -> Vec<(String, Value, u32)> {
    let mut points = Vec::new();
    for j in 0..100u32 {
        for s in 0..100u32 {
            let k = i64::from(s * 100 + j);
            let value = match (s + j) % 4 {
                0 => Value::from(k % 200),
                1 => Value::from(-k - 70_000),
                2 => Value::from(5_000_000_000 + k),
                _ => Value::from(k as f64 * 0.01 + 0.001),
            };
            points.push((format!("{base}.s{s:02}"), value, t0 - 100 + j));
        }
    }
    points
}

/// The series of `points`, each with its points as carbon should hold them, in first-seen
/// order.
fn by_series(
    points: impl IntoIterator<Item = (String, u32, f64)>,
) -> Vec<(String, Vec<(u32, f64)>)> {
    let mut series: Vec<(String, Vec<(u32, f64)>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (name, ts, value) in points {
        let i = *index.entry(name.clone()).or_insert_with(|| {
            series.push((name, Vec::new()));
            series.len() - 1
        });
        series[i].1.push((ts, value));
    }
    for (_, kept) in &mut series {
        kept.sort_by_key(|&(ts, _)| ts);
    }
    series
}

/// Waits until carbon holds every series of `expected` with its number of points, then
/// checks that it holds exactly those points, timestamps and values.
fn assert_carbon_holds(carbon: &Carbon, expected: &[(String, Vec<(u32, f64)>)]) {
    let mut by_count: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, (_, points)) in expected.iter().enumerate() {
        match by_count
            .iter_mut()
            .find(|(count, _)| *count == points.len())
        {
            Some((_, indices)) => indices.push(i),
            None => by_count.push((points.len(), vec![i])),
        }
    }
    for (count, indices) in by_count {
        let names: Vec<String> = indices.iter().map(|&i| expected[i].0.clone()).collect();
        let held = carbon.wait_for_each(&names, count);
        for (&i, points) in indices.iter().zip(&held) {
            let (name, want) = &expected[i];
            if points != want {
                let first = points.iter().zip(want).position(|(a, b)| a != b);
                panic!(
                    "{name}: carbon holds other points; first difference at {first:?}: {:?} vs {:?}",
                    first.map(|f| points[f]),
                    first.map(|f| want[f])
                );
            }
        }
    }
}

/// A pickle sender for the real carbon-cache's pickle port.
fn to_pickle_port(carbon: &Carbon) -> graphyte::Builder {
    Sender::builder("127.0.0.1")
        .port(carbon.pickle_port)
        .protocol(Protocol::Pickle)
}

/// The sender wrote `points` and lost, dropped or refused none.
fn assert_every_point_sent(sender: &Sender, points: u64) {
    let stats = sender.stats();
    assert_eq!(
        (stats.sent, stats.failed, stats.dropped, stats.refused),
        (points, 0, 0, 0),
        "{stats:?}"
    );
}

fn expected_in_carbon(points: &[(String, Value, u32)]) -> Vec<(String, Vec<(u32, f64)>)> {
    by_series(
        points
            .iter()
            .map(|(name, value, ts)| (name.clone(), *ts, value.as_f64())),
    )
}

#[test]
fn ten_thousand_points_in_a_hundred_series_reach_carbon_exactly_through_the_worker() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let points = hundred_series("pk.bg", t0);
    let sender = to_pickle_port(&carbon)
        .interval(Duration::from_millis(100))
        .build()
        .unwrap();
    for (name, value, ts) in &points {
        sender.send_at(name, *value, *ts);
    }
    sender.flush().unwrap();
    assert_every_point_sent(&sender, 10_000);
    assert_carbon_holds(&carbon, &expected_in_carbon(&points));
}

#[test]
fn ten_thousand_points_in_a_hundred_series_reach_carbon_exactly_in_synchronous_mode() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let points = hundred_series("pk.sync", t0);
    let sender = to_pickle_port(&carbon).synchronous().build().unwrap();
    let outcome = sender.send_batch(points.iter().map(|(n, v, ts)| (n, *v, *ts)));
    assert!(
        outcome.is_complete() && outcome.accepted == 10_000,
        "{outcome:?}"
    );
    assert_every_point_sent(&sender, 10_000);
    assert_carbon_holds(&carbon, &expected_in_carbon(&points));
}

#[test]
fn tagged_prefixed_and_non_ascii_points_reach_carbon_under_their_paths() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let cases = [
        tagged("svc.req", &[], 1, t0, "pk.svc.req;env=prod", int(1)),
        tagged(
            "svc.req",
            &[("zone", "b"), ("host", "web1")],
            2.5,
            t0,
            "pk.svc.req;env=prod;host=web1;zone=b",
            float(2.5),
        ),
        tagged(
            "héllo.wörld",
            &[("env", "dev")],
            3,
            t0,
            "pk.héllo.wörld;env=dev",
            int(3),
        ),
        tagged(
            "指标.延迟",
            &[("env", "dev")],
            -4,
            t0 + 1,
            "pk.指标.延迟;env=dev",
            int(-4),
        ),
    ];
    let sender = to_pickle_port(&carbon)
        .prefix("pk")
        .tag("env", "prod")
        .synchronous()
        .build()
        .unwrap();
    let outcome = sender.send_batch(cases.iter().map(|(metric, _)| metric.clone()));
    assert!(outcome.is_complete(), "{outcome:?}");
    // Untagged, a non-ASCII path becomes directories and a whisper file of that name.
    let untagged = [
        tagged("héllo.wörld", &[], 5, t0, "pk.héllo.wörld", int(5)),
        tagged("指标.延迟", &[], 6.5, t0, "pk.指标.延迟", float(6.5)),
    ];
    let sender = to_pickle_port(&carbon)
        .prefix("pk")
        .synchronous()
        .build()
        .unwrap();
    let outcome = sender.send_batch(untagged.iter().map(|(metric, _)| metric.clone()));
    assert!(outcome.is_complete(), "{outcome:?}");
    let all: Vec<Case> = cases.into_iter().chain(untagged).collect();
    assert_carbon_holds(&carbon, &points_of_cases(&all));
}

fn points_of_cases(cases: &[Case]) -> Vec<(String, Vec<(u32, f64)>)> {
    by_series(cases.iter().map(|(_, e)| {
        let value = match e.value {
            Py::Int(v) => v as f64,
            Py::Float(v) => v,
        };
        (e.path.clone(), e.ts, value)
    }))
}

#[test]
fn a_pickle_frame_of_exactly_the_1_mib_cap_is_stored_whole_by_carbon() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let cases = filling("pk.cap", 200, DEFAULT_MAX_FRAME, t0);
    let builder = |host: &str| {
        Sender::builder(host)
            .protocol(Protocol::Pickle)
            .batch_size(ONE_CHUNK)
    };
    // The same configuration writes it as one frame of exactly the cap.
    assert_eq!(
        payload_lens(&frames_of(builder("unused"), &cases)),
        [DEFAULT_MAX_FRAME]
    );
    let sender = builder("127.0.0.1")
        .port(carbon.pickle_port)
        .synchronous()
        .build()
        .unwrap();
    let outcome = sender.send_batch(cases.iter().map(|(metric, _)| metric.clone()));
    assert!(outcome.is_complete(), "{outcome:?}");
    let stats = sender.stats();
    assert_eq!(
        (stats.sent, stats.sent_bytes, stats.failed),
        (cases.len() as u64, 4 + DEFAULT_MAX_FRAME as u64, 0),
        "one frame of the cap's length, every point in it: {stats:?}"
    );
    assert_carbon_holds(&carbon, &points_of_cases(&cases));
}

#[test]
fn sixty_thousand_points_over_1_mib_reach_carbon_complete_in_frames_within_the_cap() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    // 60 series of 1000 points, at t0 - 1000 ..= t0 - 1: reading a whisper file costs the
    // same whatever it holds, so fewer, fuller series are quicker to check.
    let name_pad = "p".repeat(90);
    let points: Vec<(String, Value, u32)> = (0..60_000u32)
        .map(|i| {
            let name = format!("pk.big.{name_pad}.s{:02}", i % 60);
            let value = if i % 2 == 0 {
                Value::from(i64::from(i))
            } else {
                Value::from(f64::from(i) + 0.5)
            };
            (name, value, t0 - 1000 + i / 60)
        })
        .collect();
    let metrics = || points.iter().map(|(n, v, ts)| (n, *v, *ts));
    let dry = pickle_builder().batch_size(ONE_CHUNK).dry_run().unwrap();
    dry.sender().send_batch(metrics());
    let lens = payload_lens(&dry.take_frames());
    assert!(
        lens.len() > 1 && lens.iter().all(|&len| len <= DEFAULT_MAX_FRAME),
        "{lens:?}"
    );
    let sender = to_pickle_port(&carbon)
        .synchronous()
        .batch_size(ONE_CHUNK)
        .build()
        .unwrap();
    let outcome = sender.send_batch(metrics());
    assert!(outcome.is_complete(), "{outcome:?}");
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.failed), (60_000, 0), "{stats:?}");
    assert_eq!(
        stats.sent_bytes,
        lens.iter().map(|len| len + 4).sum::<usize>() as u64,
        "{} frames, as in the dry run",
        lens.len()
    );
    assert_carbon_holds(&carbon, &expected_in_carbon(&points));
}

// ---------------------------------------------------------------------------------------------
// A write cut short: the receiver gets whole frames or lines only, each point once.

/// What a receiver gets from a socket: one byte stream per connection. The socket takes
/// bytes until `cut_at` in all, then fails one send with `ConnectionReset` (ending that
/// connection, which a receiver drops with whatever incomplete frame or line it holds), then
/// takes everything on the connections that follow.
#[derive(Clone)]
struct BreaksOnce(Arc<Mutex<Streams>>);

struct Streams {
    connections: Vec<Vec<u8>>,
    open: bool,
    taken: usize,
    cut_at: usize,
    broke: bool,
}

impl BreaksOnce {
    fn at(cut_at: usize) -> Self {
        BreaksOnce(Arc::new(Mutex::new(Streams {
            connections: Vec::new(),
            open: false,
            taken: 0,
            cut_at,
            broke: false,
        })))
    }

    fn connections(&self) -> Vec<Vec<u8>> {
        self.0.lock().unwrap().connections.clone()
    }
}

impl graphyte::SendSocket for BreaksOnce {
    fn connect(&mut self) -> io::Result<bool> {
        let mut s = self.0.lock().unwrap();
        if s.open {
            return Ok(false);
        }
        s.connections.push(Vec::new());
        s.open = true;
        Ok(s.connections.len() > 1)
    }

    fn disconnect(&mut self) {
        self.0.lock().unwrap().open = false;
    }

    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.0.lock().unwrap();
        assert!(s.open, "send on no connection");
        let mut n = buf.len();
        if !s.broke {
            if s.taken == s.cut_at {
                s.broke = true;
                s.open = false;
                return Err(io::ErrorKind::ConnectionReset.into());
            }
            n = n.min(s.cut_at - s.taken);
        }
        s.taken += n;
        s.connections
            .last_mut()
            .unwrap()
            .extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// A sender that writes only when flushed, retrying a failed write 1 ms later.
fn flushed_by_hand(builder: graphyte::Builder, socket: BreaksOnce) -> Sender {
    builder
        .socket(socket)
        .interval(Duration::from_secs(3600))
        .backoff(Duration::from_millis(1), Duration::from_millis(1))
        .build()
        .unwrap()
}

/// Flushes through the broken write: the first flush reports the reset, the second writes the
/// rest.
fn flush_through_the_break(sender: &Sender) {
    match sender.flush() {
        Err(graphyte::Error::Io(err)) if err.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("the first flush meets the reset: {other:?}"),
    }
    sender.flush().unwrap();
}

/// The whole frames at the start of `stream`, and what is left after them (an incomplete
/// frame, or nothing).
fn whole_frames(stream: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut frames = Vec::new();
    let mut rest = stream;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        if rest.len() < 4 + len {
            break;
        }
        let (frame, after) = rest.split_at(4 + len);
        frames.push(frame);
        rest = after;
    }
    (frames, rest)
}

/// The points of one of our pickle frames (the subset graphyte writes, read strictly).
fn unpickle(frame: &[u8]) -> Vec<Expected> {
    unpickle_frame(frame)
        .into_iter()
        .map(|(path, ts, value)| {
            let Py::Int(ts) = ts else {
                panic!("a float timestamp")
            };
            Expected {
                path,
                ts: ts.try_into().unwrap(),
                value,
            }
        })
        .collect()
}

#[test]
fn a_pickle_frame_cut_short_is_resent_whole_and_its_points_counted_once() {
    let cases: Vec<Case> = (0..300u32)
        .map(|i| match i % 3 {
            0 => case(&format!("cut.pk.m{i}"), i, T, int(i)),
            1 => case(
                &format!("cut.pk.m{i}"),
                -i64::from(i) << 33,
                T,
                int(-i64::from(i) << 33),
            ),
            _ => case(
                &format!("cut.pk.m{i}"),
                f64::from(i) + 0.25,
                T,
                float(f64::from(i) + 0.25),
            ),
        })
        .collect();
    let builder = || pickle_builder().max_frame(512);
    // Where frames end, to cut the third in its middle.
    let planned = frames_of(builder(), &cases);
    assert!(planned.len() >= 4, "{} frames", planned.len());
    let half = planned[2].len() / 2;
    let socket = BreaksOnce::at(planned[0].len() + planned[1].len() + half);
    let sender = flushed_by_hand(builder(), socket.clone());
    let outcome = sender.send_batch(cases.iter().map(|(metric, _)| metric.clone()));
    assert!(outcome.is_complete(), "{outcome:?}");
    flush_through_the_break(&sender);

    let connections = socket.connections();
    assert_eq!(connections.len(), 2, "one broken connection, one after it");
    let (before, cut) = whole_frames(&connections[0]);
    let (after, left) = whole_frames(&connections[1]);
    assert_eq!(
        before.len(),
        2,
        "two frames went out whole before the reset"
    );
    assert_eq!(cut.len(), half, "half a frame went out when the reset came");
    assert!(
        left.is_empty(),
        "the second connection carries whole frames only"
    );
    assert!(
        after[0].len() > cut.len() && after[0].starts_with(cut),
        "the frame cut short is the first one written again, whole"
    );
    // What a receiver keeps: the whole frames of both connections.
    let received: Vec<Expected> = before
        .iter()
        .chain(&after)
        .flat_map(|f| unpickle(f))
        .collect();
    assert_eq!(received, expected_of(&cases), "every point once, in order");
    let stats = sender.stats();
    let whole_bytes: usize = before.iter().chain(&after).map(|f| f.len()).sum();
    assert_eq!(
        (stats.sent, stats.failed, stats.errors, stats.sent_bytes),
        (300, 0, 1, whole_bytes as u64),
        "sent counts each point and byte of a whole frame once: {stats:?}"
    );
}

#[test]
fn a_plaintext_line_cut_short_is_resent_whole_and_lines_written_before_it_are_not() {
    let lines: Vec<String> = (0..200).map(|i| format!("cut.pt.m{i} {i} {T}\n")).collect();
    // The cut: 5 bytes into line 58.
    let whole_before = 57;
    let cut_at = lines[..whole_before].iter().map(String::len).sum::<usize>() + 5;
    let socket = BreaksOnce::at(cut_at);
    let sender = flushed_by_hand(Sender::builder("unused"), socket.clone());
    let outcome = sender.send_batch((0..200).map(|i| (format!("cut.pt.m{i}"), i, T)));
    assert!(outcome.is_complete(), "{outcome:?}");
    flush_through_the_break(&sender);

    let connections = socket.connections();
    assert_eq!(connections.len(), 2, "one broken connection, one after it");
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap();
    let first = text(&connections[0]);
    let second = text(&connections[1]);
    let (whole, cut) = first.split_at(first.rfind('\n').unwrap() + 1);
    assert_eq!(
        whole,
        lines[..whole_before].concat(),
        "the lines before the cut, once"
    );
    assert_eq!(
        cut,
        &lines[whole_before][..5],
        "5 bytes of the line cut short"
    );
    assert_eq!(
        second,
        lines[whole_before..].concat(),
        "the line cut short, whole, then the rest; nothing written before it again"
    );
    let stats = sender.stats();
    let all_bytes: usize = lines.iter().map(String::len).sum();
    assert_eq!(
        (stats.sent, stats.failed, stats.errors, stats.sent_bytes),
        (200, 0, 1, all_bytes as u64),
        "sent counts each line and byte once: {stats:?}"
    );
}

/// Keeps each write whole; takes no write longer than `max`.
struct SmallWrites {
    max: usize,
    writes: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl graphyte::SendSocket for SmallWrites {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write too long",
            ));
        }
        self.writes.lock().unwrap().push(buf.to_vec());
        Ok(buf.len())
    }

    fn max_payload(&self) -> Option<usize> {
        Some(self.max)
    }
}

#[test]
fn pickle_frames_fit_a_sockets_max_payload_with_their_header() {
    let writes = Arc::new(Mutex::new(Vec::new()));
    let sender = pickle_builder()
        .synchronous()
        .batch_size(1000)
        .socket(SmallWrites {
            max: 1000,
            writes: Arc::clone(&writes),
        })
        .build()
        .unwrap();
    // 71 bytes a point (a 57-byte path, a small value): 14 fill a payload of 1000 exactly,
    // a frame of 1004 with its header.
    let points = (0..200).map(|i| (format!("fit.{i:053}"), i % 200));
    let outcome = sender.send_batch_at(points, T);
    assert!(outcome.is_complete(), "{outcome:?}");
    let writes = writes.lock().unwrap();
    assert!(writes.len() > 1, "the batch is split across frames");
    assert!(writes.iter().all(|w| w.len() <= 1000));
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.failed), (200, 0));
}
