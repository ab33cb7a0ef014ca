//! Encoded points waiting to be written, cut into frames.

use std::collections::VecDeque;

/// One closed frame: its length in bytes and how many points it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) len: usize,
    pub(crate) points: usize,
}

/// Frames in one buffer: closed ones, oldest first, then the one being filled. The front is
/// consumed as it is written; the buffer is reused, so steady sending allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    bytes: Vec<u8>,
    /// Bytes at the front already written or given up.
    head: usize,
    closed: VecDeque<Frame>,
    /// Whether a frame is being filled; it starts at `open_start`.
    open: bool,
    open_start: usize,
    open_points: usize,
    /// Points in every frame, closed or open.
    points: usize,
}

/// Consumed bytes kept at the front before the buffer is compacted.
const COMPACT_AFTER: usize = 1 << 16;

impl Frames {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Frames {
            bytes: Vec::with_capacity(bytes),
            ..Frames::default()
        }
    }

    /// Points held, in closed frames and the open one.
    #[inline]
    pub(crate) fn points(&self) -> usize {
        self.points
    }

    /// The oldest closed frame and its bytes.
    pub(crate) fn front(&self) -> Option<(Frame, &[u8])> {
        let frame = *self.closed.front()?;
        Some((frame, &self.bytes[self.head..self.head + frame.len]))
    }

    /// Removes the first `bytes` of the oldest closed frame, which hold `points` whole points:
    /// the whole frame, or the part of it that went out before a failure.
    pub(crate) fn consume_front(&mut self, bytes: usize, points: usize) {
        let Some(front) = self.closed.front_mut() else {
            return;
        };
        debug_assert!(bytes <= front.len && points <= front.points);
        if bytes >= front.len {
            self.points -= front.points;
            self.head += front.len;
            self.closed.pop_front();
        } else {
            front.len -= bytes;
            front.points -= points;
            self.points -= points;
            self.head += bytes;
        }
        self.compact();
    }

    /// Removes every frame, closed or open; returns how many points they held.
    pub(crate) fn clear(&mut self) -> usize {
        let points = self.points;
        self.bytes.clear();
        self.closed.clear();
        self.head = 0;
        self.open = false;
        self.open_start = 0;
        self.open_points = 0;
        self.points = 0;
        points
    }

    fn compact(&mut self) {
        if self.head == self.bytes.len() {
            self.bytes.clear();
            self.head = 0;
            self.open_start = 0;
        } else if self.head >= COMPACT_AFTER && self.head * 2 >= self.bytes.len() {
            self.bytes.drain(..self.head);
            self.open_start -= self.head;
            self.head = 0;
        }
    }

    // What encoders use to build frames.

    /// The buffer frames are written into; an encoder only appends to it.
    #[inline]
    pub(super) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    #[inline]
    pub(super) fn is_open(&self) -> bool {
        self.open
    }

    /// Starts a frame at `start`.
    #[inline]
    pub(super) fn open_at(&mut self, start: usize) {
        self.open = true;
        self.open_start = start;
        self.open_points = 0;
    }

    /// Bytes in the open frame so far.
    #[inline]
    pub(super) fn open_len(&self) -> usize {
        self.bytes.len() - self.open_start
    }

    #[inline]
    pub(super) fn open_points(&self) -> usize {
        self.open_points
    }

    /// Counts a point appended to the open frame.
    #[inline]
    pub(super) fn add_point(&mut self) {
        self.add_points(1);
    }

    /// Counts `n` points appended to the open frame.
    #[inline]
    pub(super) fn add_points(&mut self, n: usize) {
        self.open_points += n;
        self.points += n;
    }

    /// Ends the open frame at `end`. Bytes after `end`, if any, begin the next open frame.
    pub(super) fn end_frame(&mut self, end: usize) {
        self.closed.push_back(Frame {
            len: end - self.open_start,
            points: self.open_points,
        });
        self.open = end < self.bytes.len();
        self.open_start = end;
        self.open_points = 0;
    }

    /// Takes `bytes` as the buffer when it holds nothing (not even a frame being filled), so
    /// a chunk already encoded is not copied; `false`, leaving `bytes` alone, otherwise.
    pub(super) fn adopt(&mut self, bytes: &mut Vec<u8>) -> bool {
        if !self.bytes.is_empty() || self.open {
            return false;
        }
        std::mem::swap(&mut self.bytes, bytes);
        self.head = 0;
        true
    }

    /// The bytes of the open frame, for an encoder to patch its header.
    pub(super) fn open_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.open_start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(lens: &[(usize, usize)]) -> Frames {
        let mut frames = Frames::default();
        for &(len, points) in lens {
            let start = frames.buf().len();
            frames.open_at(start);
            frames.buf().extend(std::iter::repeat_n(b'x', len));
            for _ in 0..points {
                frames.add_point();
            }
            let end = frames.buf().len();
            frames.end_frame(end);
        }
        frames
    }

    #[test]
    fn closed_frames_come_out_oldest_first_with_their_points() {
        let mut frames = frames_of(&[(10, 2), (5, 1)]);
        assert_eq!(frames.points(), 3);
        assert_eq!(frames.front().unwrap().0, Frame { len: 10, points: 2 });
        frames.consume_front(10, 2);
        assert_eq!(frames.front().unwrap().0, Frame { len: 5, points: 1 });
        frames.consume_front(5, 1);
        assert!(frames.front().is_none());
        assert_eq!(frames.points(), 0);
    }

    #[test]
    fn consuming_part_of_a_frame_leaves_the_rest_at_the_front() {
        let mut frames = frames_of(&[(10, 4)]);
        frames.consume_front(6, 3);
        let (frame, bytes) = frames.front().unwrap();
        assert_eq!(frame, Frame { len: 4, points: 1 });
        assert_eq!(bytes.len(), 4);
        assert_eq!(frames.points(), 1);
    }

    #[test]
    fn an_open_frame_survives_compaction_of_the_front() {
        let mut frames = frames_of(&[(COMPACT_AFTER + 10, 1)]);
        let start = frames.buf().len();
        frames.open_at(start);
        frames.buf().extend_from_slice(b"open");
        frames.add_point();
        frames.consume_front(COMPACT_AFTER + 10, 1);
        assert_eq!(frames.open_len(), 4);
        assert_eq!(frames.open_bytes_mut(), b"open");
        assert_eq!(frames.points(), 1);
    }
}
