//! What a caller hands in (`Value`, `Timestamp`, `Metric`) and the compact `Point` that travels
//! from the caller's thread to the worker.

use std::borrow::Cow;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;

/// A metric value: any Rust integer or float, but not `bool`.
///
/// Integers are written exactly; floats in their shortest form that reads back to the same
/// number. NaN and infinities are refused when the metric is sent.
///
/// ```
/// use graphyte::Value;
/// let _ = Value::from(42u64);
/// let _ = Value::from(-7i32);
/// let _ = Value::from(0.125f64);
/// ```
///
/// A `bool` is not a number (graphyte-py wrote `True` into the stream):
///
/// ```compile_fail
/// let _ = graphyte::Value::from(true);
/// ```
///
/// Values compare as numbers, exactly: `Value::from(5u8) == Value::from(5i64)` and
/// `Value::from(1.0) == Value::from(1)`, but `Value::from(2u64.pow(53) + 1)` does not equal
/// `Value::from(2f64.powi(53))`.
#[derive(Clone, Copy)]
pub struct Value(pub(crate) Number);

/// Exact numeric equality: an integer equals a float only when the float is that very
/// integer, so equality is transitive (`2^53 + 1` does not equal `2^53 as f64`).
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self.as_integer(), other.as_integer()) {
            (Some(a), Some(b)) => a == b,
            (Some(int), None) => float_is_integer(other.as_f64(), int),
            (None, Some(int)) => float_is_integer(self.as_f64(), int),
            (None, None) => self.as_f64() == other.as_f64(),
        }
    }
}

/// True when `float` is exactly the integer `int`.
fn float_is_integer(float: f64, int: i128) -> bool {
    // Every integral float below 2^127 converts to i128 exactly; larger ones equal no i64/u64.
    float.fract() == 0.0 && float.abs() < 2f64.powi(127) && float as i128 == int
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Number {
    Int(i64),
    Uint(u64),
    F32(f32),
    F64(f64),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Number::Int(v) => v.fmt(f),
            Number::Uint(v) => v.fmt(f),
            Number::F32(v) => v.fmt(f),
            Number::F64(v) => v.fmt(f),
        }
    }
}

macro_rules! value_from {
    ($variant:ident($wide:ty): $($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value(Number::$variant(v as $wide))
            }
        }
    )*};
}
value_from!(Int(i64): i8, i16, i32, i64, isize);
value_from!(Uint(u64): u8, u16, u32, u64, usize);

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value(Number::F32(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value(Number::F64(v))
    }
}

/// A borrowed number, as iterating over a map of values yields.
impl<T: Copy + Into<Value>> From<&T> for Value {
    fn from(v: &T) -> Self {
        (*v).into()
    }
}

impl Value {
    /// The value as a float (an integer beyond 2^53 is rounded to the nearest float).
    pub fn as_f64(self) -> f64 {
        match self.0 {
            Number::Int(v) => v as f64,
            Number::Uint(v) => v as f64,
            Number::F32(v) => f64::from(v),
            Number::F64(v) => v,
        }
    }

    fn as_integer(self) -> Option<i128> {
        match self.0 {
            Number::Int(v) => Some(i128::from(v)),
            Number::Uint(v) => Some(i128::from(v)),
            Number::F32(_) | Number::F64(_) => None,
        }
    }

    #[inline]
    pub(crate) fn is_finite(self) -> bool {
        match self.0 {
            Number::F32(v) => v.is_finite(),
            Number::F64(v) => v.is_finite(),
            Number::Int(_) | Number::Uint(_) => true,
        }
    }
}

/// When a metric was measured, in Unix seconds.
///
/// Carbon stores whole seconds. Integers are taken as they are; a [`SystemTime`] or a float
/// number of seconds is rounded *down* to its second (the second in which it was measured).
/// Valid times are 1 to 4294967295 (year 2106); anything else, a time in milliseconds in
/// particular, is refused with [`Error::InvalidTimestamp`].
///
/// ```
/// use graphyte::Timestamp;
/// use std::time::SystemTime;
/// let _ = Timestamp::from(1_700_000_000);
/// let _ = Timestamp::from(SystemTime::now());
/// let _ = Timestamp::from(1_700_000_000.75); // stored as 1700000000
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timestamp(Time);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Time {
    Secs(i64),
    Float(f64),
    System(SystemTime),
}

macro_rules! timestamp_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Timestamp {
            fn from(v: $t) -> Self {
                // Past i64::MAX is out of range anyway: keep it out of range.
                Timestamp(Time::Secs(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
    )*};
}
timestamp_from!(i32, i64, u32, u64);

impl From<f64> for Timestamp {
    fn from(v: f64) -> Self {
        Timestamp(Time::Float(v))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(v: SystemTime) -> Self {
        Timestamp(Time::System(v))
    }
}

impl Timestamp {
    /// The timestamp in the seconds Carbon will store, or the error that refuses it.
    pub(crate) fn to_secs(self) -> Result<u32, Error> {
        let secs: Option<i64> = match self.0 {
            Time::Secs(s) => Some(s),
            // Saturates: huge values stay out of range.
            Time::Float(f) if f.is_finite() => Some(f.floor() as i64),
            Time::Float(_) => None,
            Time::System(t) => t
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        };
        match secs {
            Some(s) if (1..=i64::from(u32::MAX)).contains(&s) => Ok(s as u32),
            _ => Err(Error::InvalidTimestamp {
                given: match self.0 {
                    Time::Secs(s) => s.to_string(),
                    Time::Float(f) => f.to_string(),
                    Time::System(t) => format!("{t:?}"),
                },
            }),
        }
    }
}

/// A metric name as a send takes it, without copying it first.
///
/// - a `&'static str` (a literal) is kept by reference, and its check is remembered;
/// - a `String` is moved (or, when short, copied into the queued point and freed at once);
/// - a `&String`, or any `&str` wrapped in [`Name::borrowed`], is copied into the queued point
///   when it is 56 bytes or shorter, with no allocation; a longer one is copied to the heap.
///
/// ```
/// # let sender = graphyte::Sender::builder("localhost").build()?;
/// use graphyte::Name;
/// let host = String::from("web1");
/// let name = format!("hosts.{host}.load");
/// sender.send("requests.ok", 1);             // &'static str
/// sender.send(&name, 0.5);                   // &String: borrowed, not moved
/// sender.send(Name::borrowed(&name[6..]), 2); // any &str
/// sender.send(name, 0.7);                    // String: moved
/// # Ok::<(), graphyte::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name<'a>(pub(crate) NameRef<'a>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NameRef<'a> {
    Static(&'static str),
    Borrowed(&'a str),
    Owned(String),
}

impl<'a> Name<'a> {
    /// A name borrowed for the duration of the send: a short one is copied into the queued
    /// point without allocating.
    pub fn borrowed(name: &'a str) -> Self {
        Name(NameRef::Borrowed(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            NameRef::Static(name) => name,
            NameRef::Borrowed(name) => name,
            NameRef::Owned(name) => name,
        }
    }
}

impl From<&'static str> for Name<'_> {
    fn from(name: &'static str) -> Self {
        Name(NameRef::Static(name))
    }
}

impl<'a> From<&'a String> for Name<'a> {
    fn from(name: &'a String) -> Self {
        Name(NameRef::Borrowed(name))
    }
}

/// A borrowed `&str`, as iterating over a map keyed by names yields.
impl<'a> From<&&'a str> for Name<'a> {
    fn from(name: &&'a str) -> Self {
        Name(NameRef::Borrowed(name))
    }
}

impl From<String> for Name<'_> {
    fn from(name: String) -> Self {
        Name(NameRef::Owned(name))
    }
}

impl From<Box<str>> for Name<'_> {
    fn from(name: Box<str>) -> Self {
        Name(NameRef::Owned(name.into()))
    }
}

impl<'a> From<Cow<'a, str>> for Name<'a> {
    fn from(name: Cow<'a, str>) -> Self {
        match name {
            Cow::Borrowed(name) => Name(NameRef::Borrowed(name)),
            Cow::Owned(name) => Name(NameRef::Owned(name)),
        }
    }
}

/// One metric with everything it can carry: name, value, and optionally a timestamp and tags.
///
/// Use it with [`Sender::try_send`](crate::Sender::try_send) or
/// [`Sender::send_metric`](crate::Sender::send_metric) when the short forms are not enough.
///
/// ```
/// use graphyte::Metric;
/// let m = Metric::new("disk.free", 12.5)
///     .timestamp(1_700_000_000)
///     .tags(&[("host", "db1"), ("mount", "/var")]);
/// # let _ = m;
/// ```
#[derive(Debug, Clone)]
#[must_use = "a metric does nothing until it is sent"]
pub struct Metric<'a> {
    pub(crate) name: Name<'a>,
    pub(crate) value: Value,
    pub(crate) timestamp: Option<Timestamp>,
    pub(crate) tags: &'a [(&'a str, &'a str)],
}

impl<'a> Metric<'a> {
    /// A metric stamped with the time it is sent, with the sender's default tags. See
    /// [`Name`] for what a name can be and what each form costs.
    pub fn new(name: impl Into<Name<'a>>, value: impl Into<Value>) -> Self {
        Metric {
            name: name.into(),
            value: value.into(),
            timestamp: None,
            tags: &[],
        }
    }

    /// Sets when the metric was measured (see [`Timestamp`] for rounding and range).
    ///
    /// ```
    /// let m = graphyte::Metric::new("jobs.done", 3).timestamp(std::time::SystemTime::now());
    /// # let _ = m;
    /// ```
    pub fn timestamp(mut self, timestamp: impl Into<Timestamp>) -> Self {
        self.timestamp = Some(timestamp.into());
        self
    }

    /// Adds Graphite 1.1 tags; they override the sender's default tags of the same name.
    ///
    /// ```
    /// let m = graphyte::Metric::new("jobs.done", 3).tags(&[("queue", "mail")]);
    /// # let _ = m;
    /// ```
    pub fn tags(mut self, tags: &'a [(&'a str, &'a str)]) -> Self {
        self.tags = tags;
        self
    }
}

/// `(name, value)`: a metric stamped when sent, as in a batch.
///
/// ```
/// let m: graphyte::Metric = ("jobs.done", 3).into();
/// # let _ = m;
/// ```
impl<'a, N: Into<Name<'a>>, V: Into<Value>> From<(N, V)> for Metric<'a> {
    fn from((name, value): (N, V)) -> Self {
        Metric::new(name, value)
    }
}

/// `(name, value, timestamp)`: a metric with its own timestamp, as in a batch.
///
/// ```
/// let m: graphyte::Metric = ("jobs.done", 3, 1_700_000_000).into();
/// # let _ = m;
/// ```
impl<'a, N: Into<Name<'a>>, V: Into<Value>, T: Into<Timestamp>> From<(N, V, T)> for Metric<'a> {
    fn from((name, value, timestamp): (N, V, T)) -> Self {
        Metric::new(name, value).timestamp(timestamp)
    }
}

/// Formats a tag set as Carbon's suffix `;k=v;k2=v2`, sorted by tag name as Carbon normalizes
/// it. When a name occurs twice, the later pair wins.
pub(crate) fn tag_suffix<'t>(tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = tags.into_iter().collect();
    // Stable sort keeps the given order among equal names; keep the last of each run.
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let kept = |i: usize| pairs.get(i + 1).is_none_or(|next| next.0 != pairs[i].0);
    let len = (0..pairs.len())
        .filter(|&i| kept(i))
        .map(|i| pairs[i].0.len() + pairs[i].1.len() + 2)
        .sum();
    let mut out = String::with_capacity(len);
    for (i, (key, value)) in pairs.iter().enumerate() {
        if !kept(i) {
            continue;
        }
        out.push(';');
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// A checked metric on its way to the worker. It holds no formatted text: the worker formats.
///
/// Kept small, and free of allocations the worker would have to free: a heap block freed on
/// another thread than the one that allocated it costs the allocator (and the next send) far
/// more than copying a short name.
#[derive(Debug)]
pub(crate) struct Point {
    pub(crate) name: PointName,
    /// The whole tag suffix (`;a=1;b=2`) when the call had its own tags; `None` means the
    /// sender's default tags.
    pub(crate) tags: Option<Box<str>>,
    value_bits: u64,
    pub(crate) timestamp: u32,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Int,
    Uint,
    F32,
    F64,
}

impl Point {
    #[inline]
    pub(crate) fn new(
        name: Name<'_>,
        tags: Option<Box<str>>,
        value: Number,
        timestamp: u32,
    ) -> Self {
        let (kind, value_bits) = match value {
            Number::Int(v) => (Kind::Int, v as u64),
            Number::Uint(v) => (Kind::Uint, v),
            Number::F32(v) => (Kind::F32, u64::from(v.to_bits())),
            Number::F64(v) => (Kind::F64, v.to_bits()),
        };
        Point {
            name: PointName::new(name),
            tags,
            value_bits,
            timestamp,
            kind,
        }
    }

    pub(crate) fn value(&self) -> Number {
        match self.kind {
            Kind::Int => Number::Int(self.value_bits as i64),
            Kind::Uint => Number::Uint(self.value_bits),
            Kind::F32 => Number::F32(f32::from_bits(self.value_bits as u32)),
            Kind::F64 => Number::F64(f64::from_bits(self.value_bits)),
        }
    }
}

/// Longest owned name copied into the point instead of moved.
const INLINE_NAME: usize = 56;

/// A point's name: borrowed when static, copied when short, moved when long.
pub(crate) enum PointName {
    Static(&'static str),
    Inline(InlineName),
    Owned(String),
}

/// Word-aligned, so moving a point copies whole words: byte-offset copies of fields that
/// were just written as words stall the processor's store forwarding.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct InlineName {
    len: usize,
    bytes: [u8; INLINE_NAME],
}

impl PointName {
    #[inline]
    fn new(name: Name<'_>) -> Self {
        match name.0 {
            NameRef::Static(name) => PointName::Static(name),
            // A borrowed or owned short name is copied; an owned one is freed here, on the
            // thread that allocated it.
            NameRef::Borrowed(name) if name.len() <= INLINE_NAME => Self::inline(name),
            NameRef::Owned(name) if name.len() <= INLINE_NAME => Self::inline(&name),
            NameRef::Borrowed(name) => PointName::Owned(name.to_owned()),
            NameRef::Owned(name) => PointName::Owned(name),
        }
    }

    #[inline]
    fn inline(name: &str) -> Self {
        let mut inline = InlineName {
            len: name.len(),
            bytes: [0; INLINE_NAME],
        };
        inline.bytes[..name.len()].copy_from_slice(name.as_bytes());
        PointName::Inline(inline)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            PointName::Static(name) => name.as_bytes(),
            PointName::Inline(inline) => &inline.bytes[..inline.len],
            PointName::Owned(name) => name.as_bytes(),
        }
    }
}

impl fmt::Debug for PointName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        String::from_utf8_lossy(self.as_bytes()).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_sorted_and_later_duplicates_win() {
        let suffix = tag_suffix([("zone", "a"), ("host", "x"), ("zone", "b")]);
        assert_eq!(suffix, ";host=x;zone=b");
    }

    #[test]
    fn float_timestamp_is_rounded_down() {
        assert_eq!(
            Timestamp::from(1_700_000_000.99).to_secs().unwrap(),
            1_700_000_000
        );
    }

    #[test]
    fn millisecond_timestamp_is_refused() {
        assert!(Timestamp::from(1_700_000_000_000i64).to_secs().is_err());
    }

    #[test]
    fn zero_and_negative_timestamps_are_refused() {
        assert!(Timestamp::from(0).to_secs().is_err());
        assert!(Timestamp::from(-5).to_secs().is_err());
    }

    #[test]
    fn point_with_its_queue_slot_fits_in_112_bytes() {
        assert!(
            std::mem::size_of::<Point>() <= 104,
            "{}",
            std::mem::size_of::<Point>()
        );
    }

    #[test]
    fn short_owned_names_are_copied_and_long_ones_moved() {
        let short = Point::new(Name::from("a".repeat(56)), None, Number::Int(1), 1);
        let long = Point::new(Name::from("b".repeat(57)), None, Number::Int(1), 1);
        assert!(matches!(short.name, PointName::Inline(_)));
        assert!(matches!(long.name, PointName::Owned(_)));
        assert_eq!(short.name.as_bytes(), "a".repeat(56).as_bytes());
    }

    #[test]
    fn a_short_borrowed_name_is_copied_and_a_long_one_owned() {
        let text = "c".repeat(57);
        let short = Point::new(Name::borrowed(&text[..56]), None, Number::Int(1), 1);
        let long = Point::new(Name::borrowed(&text), None, Number::Int(1), 1);
        assert!(matches!(short.name, PointName::Inline(_)));
        assert!(matches!(long.name, PointName::Owned(_)));
    }

    #[test]
    fn value_equality_is_exact_and_so_transitive() {
        let big = 2u64.pow(53);
        assert_ne!(Value::from(big + 1), Value::from(big as f64));
        assert_eq!(Value::from(big), Value::from(big as f64));
        assert_eq!(Value::from(1.0), Value::from(1u8));
        assert_ne!(Value::from(0.5), Value::from(0));
        assert_ne!(Value::from(u64::MAX), Value::from(u64::MAX as f64));
        assert_eq!(Value::from(-3i64), Value::from(-3.0f32));
        assert_ne!(Value::from(f64::NAN), Value::from(f64::NAN));
    }

    #[test]
    fn packed_values_unpack_to_what_went_in() {
        for value in [
            Number::Int(i64::MIN),
            Number::Uint(u64::MAX),
            Number::F32(-0.1),
            Number::F64(1e300),
        ] {
            assert_eq!(Point::new(Name::from("a"), None, value, 1).value(), value);
        }
    }
}
