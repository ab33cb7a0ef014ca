//! Protocols: how points become frames, the unit the link writes and counts.
//!
//! A frame is a chunk of whole plaintext lines or one pickle frame. The encoder appends points
//! to frames no larger than its limit and says how many points each carries; it knows how long
//! a point can get, so a metric that could never fit is refused on the caller's thread; and it
//! says how much of a frame cut short by a failed write still arrived as whole points. The
//! link writes frames and counts their points, whatever the protocol.

mod frames;
mod pickle;
mod plaintext;

use crate::error::Error;
use crate::point::metric::Point;

pub(crate) use frames::Frames;
pub use plaintext::MAX_LINE_LEN;
pub(crate) use plaintext::write_u64;

/// Most bytes in one frame by default: carbon-cache's cap on a pickle frame
/// (`PICKLE_RECEIVER_MAX_LENGTH`), which larger receivers (go-carbon, carbon-relay-ng) exceed.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// Largest frame a builder accepts.
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// Smallest frame a builder accepts: room for a pickle frame of one short metric.
pub(crate) const MIN_FRAME: usize = 256;

/// Carbon's wire formats.
///
/// | protocol | default port | carbon-cache, carbon-relay, go-carbon, carbon-relay-ng | carbon-c-relay |
/// |---|---|---|---|
/// | [`Plaintext`](Protocol::Plaintext) (TCP or UDP) | 2003 | yes | yes |
/// | [`Pickle`](Protocol::Pickle) (TCP) | 2004 | yes | no |
///
/// ```
/// use graphyte::{Protocol, Sender};
/// let sender = Sender::builder("carbon.example.com").protocol(Protocol::Pickle).build()?;
/// # Ok::<(), graphyte::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// Lines of text, `path value timestamp\n` (the default): what every Carbon server, relay
    /// and aggregator reads, over TCP or UDP.
    #[default]
    Plaintext,
    /// Carbon's pickle protocol, over TCP: frames of a 4-byte big-endian length and a pickled
    /// list of `(path, (timestamp, value))`. carbon-cache reads it with a fraction of the work
    /// of parsing lines; carbon-c-relay does not read it at all.
    Pickle,
}

impl Protocol {
    /// The port Carbon listens on for this protocol: 2003 for plaintext, 2004 for pickle.
    ///
    /// ```
    /// assert_eq!(graphyte::Protocol::Pickle.default_port(), 2004);
    /// ```
    pub const fn default_port(self) -> u16 {
        match self {
            Protocol::Plaintext => 2003,
            Protocol::Pickle => 2004,
        }
    }
}

/// What each protocol does: the seam between the queue and the socket.
pub(crate) trait Encode {
    /// Appends `point` to the open frame, opening one if needed, and ending it first when the
    /// point would take it over the frame limit.
    fn push(&self, point: &Point, frames: &mut Frames);

    /// Ends the open frame, if any, so that it can be written.
    fn close(&self, frames: &mut Frames);

    /// Of a frame whose first `written` bytes reached the socket before a failure, how much
    /// is whole points: `(bytes, points)`. The rest of the frame is sent again or given up.
    fn whole_points(&self, frame: &[u8], written: usize) -> (usize, usize);

    /// The longest path (prefix, name and tags) a point may have to fit in a frame.
    fn max_path_len(&self) -> usize;

    /// The longest a point with a path of `path_len` bytes can encode to, with its frame's
    /// overhead: what [`Error::LineTooLong`] reports.
    fn max_encoded_len(&self, path_len: usize) -> usize;

    /// The limit `max_encoded_len` is held to.
    fn limit(&self) -> usize;
}

macro_rules! each {
    ($self:ident, $encoder:ident => $call:expr) => {
        match $self {
            Encoder::Plaintext($encoder) => $call,
            Encoder::Pickle($encoder) => $call,
        }
    };
}

/// A sender's encoder: one protocol, its path style and its frame limit, fixed at build.
#[derive(Debug, Clone)]
pub(crate) enum Encoder {
    Plaintext(plaintext::Plaintext),
    Pickle(pickle::Pickle),
}

impl Encoder {
    /// An encoder for `protocol` writing paths in `style`, with frames of at most `max_frame`
    /// bytes (for pickle, the length its header gives), each of which fits one write of at
    /// most `max_write` bytes, header included.
    pub(crate) fn new(
        protocol: Protocol,
        style: PathStyle,
        max_frame: usize,
        max_write: Option<usize>,
    ) -> Self {
        let max_write = max_write.unwrap_or(usize::MAX);
        match protocol {
            Protocol::Plaintext => {
                Encoder::Plaintext(plaintext::Plaintext::new(style, max_frame.min(max_write)))
            }
            Protocol::Pickle => Encoder::Pickle(pickle::Pickle::new(
                style,
                max_frame.min(max_write.saturating_sub(pickle::HEADER)),
            )),
        }
    }

    /// Refuses a point whose name is `name_len` bytes and whose tag suffix is `tags_len`
    /// bytes (the call's own or the sender's defaults) if it may not fit in one frame.
    #[inline]
    pub(crate) fn check_fits(&self, name_len: usize, tags_len: usize) -> Result<(), Error> {
        let path_len = self.style().prefix_len() + name_len + tags_len;
        if path_len <= self.max_path_len() {
            return Ok(());
        }
        Err(Error::LineTooLong {
            len: self.max_encoded_len(path_len),
            max: self.limit(),
        })
    }

    /// Appends `count` plaintext lines already in their final form, leaving `lines` an empty
    /// buffer to fill again. Only a plaintext encoder takes them; any other returns `false`
    /// and leaves the frames and `lines` as they were.
    pub(crate) fn push_lines(
        &self,
        lines: &mut Vec<u8>,
        count: usize,
        frames: &mut Frames,
    ) -> bool {
        match self {
            Encoder::Plaintext(plaintext) => {
                plaintext.push_lines(lines, count, frames);
                true
            }
            Encoder::Pickle(_) => false,
        }
    }

    /// The protocol this encodes.
    pub(crate) fn protocol(&self) -> Protocol {
        match self {
            Encoder::Plaintext(_) => Protocol::Plaintext,
            Encoder::Pickle(_) => Protocol::Pickle,
        }
    }

    /// How paths are written: the sender's prefix and default tags.
    pub(crate) fn style(&self) -> &PathStyle {
        each!(self, e => &e.style)
    }
}

impl Encode for Encoder {
    #[inline]
    fn push(&self, point: &Point, frames: &mut Frames) {
        each!(self, e => e.push(point, frames))
    }

    fn close(&self, frames: &mut Frames) {
        each!(self, e => e.close(frames))
    }

    fn whole_points(&self, frame: &[u8], written: usize) -> (usize, usize) {
        each!(self, e => e.whole_points(frame, written))
    }

    #[inline]
    fn max_path_len(&self) -> usize {
        each!(self, e => e.max_path_len())
    }

    fn max_encoded_len(&self, path_len: usize) -> usize {
        each!(self, e => e.max_encoded_len(path_len))
    }

    fn limit(&self) -> usize {
        each!(self, e => e.limit())
    }
}

/// What every point's path is built from: the sender's prefix and default tags, formatted
/// once. The path is the same text in every protocol: `prefix.name;tag=value;…`.
#[derive(Debug, Clone)]
pub(crate) struct PathStyle {
    /// `"prefix."`, or empty.
    prefix: Box<str>,
    /// `";a=1;b=2"` (sorted by tag name), or empty.
    default_tags: Box<str>,
}

impl PathStyle {
    /// `prefix` without its `.`; `default_tags` as a tag suffix.
    pub(crate) fn new(prefix: Option<&str>, default_tags: &str) -> Self {
        PathStyle {
            prefix: prefix.map_or_else(String::new, |p| format!("{p}.")).into(),
            default_tags: default_tags.into(),
        }
    }

    /// Bytes the prefix adds to a path, its `.` included.
    #[inline]
    fn prefix_len(&self) -> usize {
        self.prefix.len()
    }

    /// `"prefix."`, or empty.
    #[inline]
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The default tags' suffix (`";a=1;b=2"`), or empty.
    #[inline]
    pub(crate) fn default_tags(&self) -> &str {
        &self.default_tags
    }

    #[inline]
    fn tags<'p>(&'p self, point: &'p Point) -> &'p str {
        point.tags.as_deref().unwrap_or(&self.default_tags)
    }

    /// The length of the point's path.
    #[inline]
    fn len(&self, point: &Point) -> usize {
        self.prefix.len() + point.name.as_bytes().len() + self.tags(point).len()
    }

    /// Appends the point's path to `out`.
    #[inline]
    fn write(&self, point: &Point, out: &mut Vec<u8>) {
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(point.name.as_bytes());
        out.extend_from_slice(self.tags(point).as_bytes());
    }
}

/// Encodes `points` and returns the frames made, with the points each carries.
#[cfg(test)]
pub(crate) fn frames_of(encoder: &impl Encode, points: &[Point]) -> Vec<(Vec<u8>, usize)> {
    let mut frames = Frames::default();
    for point in points {
        encoder.push(point, &mut frames);
    }
    encoder.close(&mut frames);
    drain(&mut frames)
}

/// Takes every closed frame, oldest first, with the points each carries.
#[cfg(test)]
pub(crate) fn drain(frames: &mut Frames) -> Vec<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    while let Some((frame, bytes)) = frames.front() {
        out.push((bytes.to_vec(), frame.points));
        frames.consume_front(frame.len, frame.points);
    }
    out
}
