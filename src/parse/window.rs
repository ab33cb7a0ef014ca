//! The in-place check of plain lines ([`super::check_plain_line`]) 64 bytes at a time, for
//! x86_64. SIMD compares turn each byte class a plain line is made of (newline, space, dot,
//! digit, not a name's byte) into a mask of one bit per byte, and the line's shape is read
//! from the masks with a few bit operations instead of a loop over its bytes. With SSE2,
//! which every x86_64 CPU has, that is about three times the scalar check's rate; with AVX2,
//! where the CPU has it, more. Stream mode needs it to keep up with the network.

use std::arch::x86_64::{
    __m128i, __m256i, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_loadu_si128,
    _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm256_andnot_si256, _mm256_cmpeq_epi8,
    _mm256_cmpgt_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
};

use super::{MAX_PLAIN_VALUE, check_plain_line};

/// The bytes looked at at once; a line must end within them.
const WIDTH: usize = 64;

/// The run of plain lines (see [`check_plain_line`]) at the start of `text`, each at most
/// `limit` bytes long: its length in bytes and in lines. It stops at the first other line,
/// and at a last line without its newline.
pub(super) fn plain_run(text: &[u8], limit: usize) -> (usize, usize) {
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, as just checked.
        unsafe { plain_run_avx2(text, limit) }
    } else {
        // SAFETY: SSE2 is part of the x86_64 architecture: every x86_64 CPU has it.
        unsafe { plain_run_sse2(text, limit) }
    }
}

#[target_feature(enable = "avx2")]
fn plain_run_avx2(text: &[u8], limit: usize) -> (usize, usize) {
    // SAFETY: this function runs only where the CPU has AVX2.
    unsafe { run::<true>(text, limit) }
}

#[target_feature(enable = "sse2")]
fn plain_run_sse2(text: &[u8], limit: usize) -> (usize, usize) {
    // SAFETY: SSE2 is enabled here.
    unsafe { run::<false>(text, limit) }
}

/// [`plain_run`], with AVX2 compares or SSE2 ones; inlined into a function compiled for
/// them, so that the compares are inlined too.
///
/// # Safety
///
/// With `AVX2`, the CPU must have AVX2.
#[inline(always)]
unsafe fn run<const AVX2: bool>(text: &[u8], limit: usize) -> (usize, usize) {
    let (mut at, mut lines) = (0, 0);
    loop {
        let rest = &text[at..];
        let window = match rest.first_chunk::<WIDTH>() {
            // SAFETY: the caller's promise for AVX2; SSE2 is part of x86_64.
            Some(window) if AVX2 => Some((window, unsafe { Masks::avx2(window) })),
            Some(window) => Some((window, unsafe { Masks::sse2(window) })),
            None => None,
        };
        let len = match window.map(|(window, masks)| check(window, &masks)) {
            Some(Window::Plain(len)) => len,
            Some(Window::Other) => break,
            Some(Window::Unsure) | None => match check_plain_line(rest) {
                Some(len) => len,
                None => break,
            },
        };
        if len > limit {
            break;
        }
        at += len;
        lines += 1;
    }
    (at, lines)
}

/// What [`check`] found at the start of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// A plain line with its timestamp: its length, newline included.
    Plain(usize),
    /// Not a plain line.
    Other,
    /// No newline in the window: the scalar check decides.
    Unsure,
}

/// Takes exactly the lines [`check_plain_line`] takes, among those that end in the window.
#[inline(always)]
fn check(window: &[u8; WIDTH], masks: &Masks) -> Window {
    let end = masks.newline.trailing_zeros() as usize;
    if end == WIDTH {
        return Window::Unsure;
    }
    let spaces = masks.space & below(end);
    // The spaces after the first; a third space falls in the timestamp, which is digits.
    let second_space = without_lowest(spaces);
    if second_space == 0 {
        return Window::Other;
    }
    let name_len = spaces.trailing_zeros() as usize;
    let stamp_at = second_space.trailing_zeros() as usize + 1;
    let plain = plain_name(window, masks, name_len)
        && plain_value(window, masks, name_len + 1, stamp_at - 1)
        && plain_timestamp(&window[stamp_at..end], masks, stamp_at);
    if plain {
        Window::Plain(end + 1)
    } else {
        Window::Other
    }
}

/// Bytes `0..name_len`: no odd byte, no empty segment, no leading `.` or `~`, no trailing
/// `.`. (A window is shorter than the longest name the scalar check takes.)
#[inline(always)]
fn plain_name(window: &[u8; WIDTH], masks: &Masks, name_len: usize) -> bool {
    let dot_after_dot = masks.dot & (masks.dot << 1);
    name_len > 0
        && (masks.odd | dot_after_dot) & below(name_len) == 0
        && window[0] != b'.'
        && window[0] != b'~'
        && window[name_len - 1] != b'.'
}

/// Bytes `from..to`: `-?digits(.digits*)?`, at most [`MAX_PLAIN_VALUE`] after the sign.
#[inline(always)]
fn plain_value(window: &[u8; WIDTH], masks: &Masks, from: usize, to: usize) -> bool {
    let digits_at = from + usize::from(window[from] == b'-');
    let digits = between(digits_at, to);
    digits_at < to
        && to - digits_at <= MAX_PLAIN_VALUE
        && window[digits_at].is_ascii_digit()
        && digits & !(masks.digit | masks.dot) == 0
        && without_lowest(digits & masks.dot) == 0
}

/// `stamp`, found at `at`: whole seconds from 1 to `u32::MAX`.
#[inline(always)]
fn plain_timestamp(stamp: &[u8], masks: &Masks, at: usize) -> bool {
    let Some(&first) = stamp.first() else {
        return false;
    };
    // The first digit settles the common case of each rule, without a loop.
    stamp.len() <= 10
        && between(at, at + stamp.len()) & !masks.digit == 0
        && (first != b'0' || stamp.iter().any(|&b| b != b'0'))
        && (stamp.len() < 10 || first < b'4' || stamp <= b"4294967295".as_slice())
}

/// `bits` less its lowest set bit.
#[inline(always)]
fn without_lowest(bits: u64) -> u64 {
    bits & bits.wrapping_sub(1)
}

/// Bits `0..n` (`n` < 64).
#[inline(always)]
fn below(n: usize) -> u64 {
    (1 << n) - 1
}

/// Bits `from..to` (`to` < 64).
#[inline(always)]
fn between(from: usize, to: usize) -> u64 {
    below(to) & !below(from.min(to))
}

/// One bit per byte of a window, bit `i` for byte `i`.
struct Masks {
    newline: u64,
    space: u64,
    dot: u64,
    digit: u64,
    /// Not a plain name's byte: outside `!`..=`~`, or one of `;` `/` `{` `}` `"`.
    odd: u64,
}

impl Masks {
    #[inline]
    #[target_feature(enable = "sse2")]
    fn sse2(window: &[u8; WIDTH]) -> Masks {
        let mut masks = Masks::EMPTY;
        for (i, part) in window.chunks_exact(16).enumerate() {
            // SAFETY: `part` is 16 bytes, and the load takes any alignment.
            let bytes = unsafe { _mm_loadu_si128(part.as_ptr().cast::<__m128i>()) };
            let [newline, space, dot, digit, name_byte] = Sse2(bytes).classes();
            let shift = 16 * i;
            masks.newline |= newline << shift;
            masks.space |= space << shift;
            masks.dot |= dot << shift;
            masks.digit |= digit << shift;
            masks.odd |= name_byte << shift;
        }
        masks.odd = !masks.odd;
        masks
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn avx2(window: &[u8; WIDTH]) -> Masks {
        let mut masks = Masks::EMPTY;
        for (i, part) in window.chunks_exact(32).enumerate() {
            // SAFETY: `part` is 32 bytes, and the load takes any alignment.
            let bytes = unsafe { _mm256_loadu_si256(part.as_ptr().cast::<__m256i>()) };
            let [newline, space, dot, digit, name_byte] = Avx2(bytes).classes();
            let shift = 32 * i;
            masks.newline |= newline << shift;
            masks.space |= space << shift;
            masks.dot |= dot << shift;
            masks.digit |= digit << shift;
            masks.odd |= name_byte << shift;
        }
        masks.odd = !masks.odd;
        masks
    }

    const EMPTY: Masks = Masks {
        newline: 0,
        space: 0,
        dot: 0,
        digit: 0,
        odd: 0,
    };
}

/// 16 bytes in an SSE2 register.
struct Sse2(__m128i);

impl Sse2 {
    /// The masks of newlines, spaces, dots, digits and a plain name's bytes.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn classes(&self) -> [u64; 5] {
        let special = _mm_or_si128(
            _mm_or_si128(self.equal(b';'), self.equal(b'/')),
            _mm_or_si128(
                _mm_or_si128(self.equal(b'{'), self.equal(b'}')),
                self.equal(b'"'),
            ),
        );
        let name_byte = _mm_andnot_si128(special, self.within(b'!', b'~'));
        [
            Sse2::bits(self.equal(b'\n')),
            Sse2::bits(self.equal(b' ')),
            Sse2::bits(self.equal(b'.')),
            Sse2::bits(self.within(b'0', b'9')),
            Sse2::bits(name_byte),
        ]
    }

    /// The top bit of each byte, one bit per byte.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn bits(bytes: __m128i) -> u64 {
        u64::from(_mm_movemask_epi8(bytes) as u16)
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    fn equal(&self, byte: u8) -> __m128i {
        _mm_cmpeq_epi8(self.0, _mm_set1_epi8(byte as i8))
    }

    /// Bytes from `low` to `high`, both ASCII. The compares are signed, so bytes from 0x80
    /// up are negative: below any ASCII bound, as they should be.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn within(&self, low: u8, high: u8) -> __m128i {
        let above = _mm_cmpgt_epi8(self.0, _mm_set1_epi8(high as i8));
        let from_low = _mm_cmpgt_epi8(self.0, _mm_set1_epi8(low as i8 - 1));
        _mm_andnot_si128(above, from_low)
    }
}

/// 32 bytes in an AVX2 register.
struct Avx2(__m256i);

impl Avx2 {
    /// The masks of newlines, spaces, dots, digits and a plain name's bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn classes(&self) -> [u64; 5] {
        let special = _mm256_or_si256(
            _mm256_or_si256(self.equal(b';'), self.equal(b'/')),
            _mm256_or_si256(
                _mm256_or_si256(self.equal(b'{'), self.equal(b'}')),
                self.equal(b'"'),
            ),
        );
        let name_byte = _mm256_andnot_si256(special, self.within(b'!', b'~'));
        [
            Avx2::bits(self.equal(b'\n')),
            Avx2::bits(self.equal(b' ')),
            Avx2::bits(self.equal(b'.')),
            Avx2::bits(self.within(b'0', b'9')),
            Avx2::bits(name_byte),
        ]
    }

    /// The top bit of each byte, one bit per byte.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn bits(bytes: __m256i) -> u64 {
        u64::from(_mm256_movemask_epi8(bytes) as u32)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn equal(&self, byte: u8) -> __m256i {
        _mm256_cmpeq_epi8(self.0, _mm256_set1_epi8(byte as i8))
    }

    /// As [`Sse2::within`].
    #[inline]
    #[target_feature(enable = "avx2")]
    fn within(&self, low: u8, high: u8) -> __m256i {
        let above = _mm256_cmpgt_epi8(self.0, _mm256_set1_epi8(high as i8));
        let from_low = _mm256_cmpgt_epi8(self.0, _mm256_set1_epi8(low as i8 - 1));
        _mm256_andnot_si256(above, from_low)
    }
}

#[cfg(test)]
mod tests {
    use super::super::plain_run_line_by_line as scalar_run;
    use super::*;

    /// The run as each way this CPU can check it finds it: with SSE2, and through
    /// [`plain_run`], which takes AVX2 where the CPU has it (on a CPU without, both are
    /// SSE2's, and the AVX2 code is not tested there).
    fn window_runs(text: &[u8], limit: usize) -> [(usize, usize); 2] {
        // SAFETY: SSE2 is part of x86_64.
        let sse2 = unsafe { plain_run_sse2(text, limit) };
        [sse2, plain_run(text, limit)]
    }

    #[test]
    fn a_run_of_short_plain_lines_is_taken_whole() {
        let text =
            b"a.b 1 1700000000\nc -2.5 4294967295\napp.server7.requests.count 437 1700000000\n"
                .repeat(10);
        assert_eq!(window_runs(&text, usize::MAX), [(text.len(), 30); 2]);
    }

    #[test]
    fn a_line_longer_than_a_window_is_left_to_the_scalar_check() {
        let name = "a.".repeat(40) + "b";
        let text = format!("{name} 1 1700000000\nc 2 1700000000\n").into_bytes();
        assert!(text.len() > WIDTH + 16);
        assert_eq!(window_runs(&text, usize::MAX), [(text.len(), 2); 2]);
    }

    #[test]
    fn a_run_stops_at_the_first_line_longer_than_the_limit() {
        let text = b"a 1 1700000000\nabcdef 1 1700000000\nb 1 1700000000\n".repeat(3);
        assert_eq!(window_runs(&text, 15), [(15, 1); 2]);
    }

    #[test]
    fn a_run_stops_before_a_last_line_without_its_newline() {
        let text = b"a 1 1700000000\n".repeat(8);
        let cut = &text[..text.len() - 1];
        assert_eq!(window_runs(cut, usize::MAX), [(15 * 7, 7); 2]);
    }

    #[test]
    fn each_kind_of_odd_line_stops_a_run_where_the_scalar_check_stops() {
        let odd_lines: &[&[u8]] = &[
            b"a;b=c 1 1700000000",
            b"a/b 1 1700000000",
            b"a{b} 1 1700000000",
            b"a\"b 1 1700000000",
            b"a\x7fb 1 1700000000",
            b"a\xc3\xa9 1 1700000000",
            b"a\tb 1 1700000000",
            b"a..b 1 1700000000",
            b".a 1 1700000000",
            b"a. 1 1700000000",
            b"~a 1 1700000000",
            b" a 1 1700000000",
            b"a  1 1700000000",
            b"a 1  1700000000",
            b"a 1 1700000000 ",
            b"a 1 1700000000\r",
            b"a - 1700000000",
            b"a -.5 1700000000",
            b"a 1.2.3 1700000000",
            b"a 1e3 1700000000",
            b"a +1 1700000000",
            b"a 1-2 1700000000",
            b"a 1234567890123456789012345 1700000000",
            b"a 1 0000000000",
            b"a 1 4294967296",
            b"a 1 17000000000",
            b"a 1 17e8",
            b"a 1",
            b"a 1 1700000000 1",
        ];
        for odd in odd_lines {
            let mut text = b"a 1 1700000000\n".to_vec();
            text.extend_from_slice(odd);
            text.extend_from_slice(&b"\nb 2 1700000000\n".repeat(8));
            let expected = scalar_run(&text, usize::MAX);
            assert_eq!(expected, (15, 1), "{}", text.escape_ascii());
            assert_eq!(
                window_runs(&text, usize::MAX),
                [expected; 2],
                "{}",
                text.escape_ascii()
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// Whatever a stream holds, the window check takes the same run as the scalar check.
        #[test]
        fn the_window_check_takes_the_run_the_scalar_check_takes(
            lines in proptest::collection::vec(
                "[a~.;/{}\"\u{7f}é\t\r -]{0,2}[a-z0-9._~-]{0,12}[ \t]{0,2}[-+]?[0-9.e]{0,4}[ ]{0,2}[0-9.]{0,11}[ x\r]{0,1}",
                1..6,
            ),
            plain in proptest::collection::vec(0usize..3, 1..6),
            limit in proptest::prop_oneof![proptest::strategy::Just(usize::MAX), 10usize..60],
        ) {
            // Plain lines between the random ones, so that runs get long and cross windows.
            let mut text = String::new();
            for (line, plain) in lines.iter().zip(plain.iter().cycle()) {
                text += &"app.server1.cpu 42 1700000000\n".repeat(*plain);
                text += line;
                text.push('\n');
            }
            let expected = scalar_run(text.as_bytes(), limit);
            proptest::prop_assert_eq!(window_runs(text.as_bytes(), limit), [expected; 2], "{:?}", text);
        }

        /// Lines at the window's and the fields' limits: names up to and past the window,
        /// values around 24 digits, timestamps around `u32::MAX`, and the last line with or
        /// without its newline.
        #[test]
        fn the_window_check_agrees_with_the_scalar_check_at_the_limits(
            lines in proptest::collection::vec(
                (
                    "[a-z][a-z.]{0,70}",
                    "-?[0-9]{0,26}(\\.[0-9]{0,3})?",
                    proptest::prop_oneof![
                        "[0-9]{9,11}",
                        "42949672[89][0-9]",
                        "0{1,10}",
                        proptest::strategy::Just("4294967295".to_owned()),
                        proptest::strategy::Just("4294967296".to_owned()),
                    ],
                ),
                1..5,
            ),
            newline_at_end in proptest::bool::ANY,
        ) {
            let mut text = lines
                .iter()
                .map(|(name, value, stamp)| format!("{name} {value} {stamp}\n"))
                .collect::<String>();
            if !newline_at_end {
                text.pop();
            }
            let expected = scalar_run(text.as_bytes(), usize::MAX);
            proptest::prop_assert_eq!(window_runs(text.as_bytes(), usize::MAX), [expected; 2], "{:?}", text);
        }
    }
}
