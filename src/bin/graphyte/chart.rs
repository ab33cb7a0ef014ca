//! `graphyte render --format chart`: each series as one line of text, its name, a sparkline
//! and its minimum, maximum and last value, the whole fitting the terminal's width.
//!
//! ```text
//! app.server1.requests  ▁▂▃▄▅▆▇█▇▆▅▄▃▂▁  min 1 max 8 last 1
//! app.server2.requests   ▁▁▂▂▄▄▆▆████   min 0 max 90 last 90
//! app.server3.requests  (no values)
//! ```
//!
//! Pure: the series and a width in, the text out.

use graphyte::render::Series;

/// The sparkline's characters, lowest to highest.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A flat series (every value the same) is drawn at mid height.
const FLAT: char = BARS[3];

/// Between the name, the sparkline and the figures.
const GAP: &str = "  ";

/// The width when the terminal's is not known.
pub const DEFAULT_WIDTH: usize = 80;

/// A shortened name keeps at least this many characters, when it has them.
const MIN_NAME: usize = 12;

/// The sparkline keeps at least this many characters (or one per point, when fewer).
const MIN_SPARK: usize = 16;

/// A figure longer than this is rounded for the chart.
const MAX_FIGURE: usize = 10;

/// The chart of `series`, one line per series (each ending with a newline), none longer
/// than `width` characters.
///
/// Each character of a sparkline stands for a run of neighbouring points, averaged, scaled
/// between the series' lowest and highest finite values; a run with no value is a space, and
/// one with only infinite values is drawn at the top (`+inf`) or the bottom (`-inf`). The
/// sparklines line up, and so do the figures after them.
pub fn chart(series: &[Series], width: usize) -> String {
    let figures: Vec<Option<String>> = series.iter().map(|s| figures(&s.points)).collect();
    let figures_width = figures
        .iter()
        .flatten()
        .map(|f| f.chars().count())
        .max()
        .unwrap_or(0);
    let longest_name = series.iter().map(|s| columns(&s.name)).max().unwrap_or(0);
    let most_points = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    // What the name and the sparkline share.
    let room = width.saturating_sub(figures_width + 2 * GAP.len());
    let name_width = longest_name
        .min(room.saturating_sub(most_points.clamp(1, MIN_SPARK)))
        .max(longest_name.min(MIN_NAME));
    let spark_width = most_points.min(room.saturating_sub(name_width)).max(1);
    let mut out = String::new();
    for (series, figures) in series.iter().zip(&figures) {
        let mut line = pad(&shorten(&series.name, name_width), name_width);
        line.push_str(GAP);
        match figures {
            Some(figures) => {
                let values: Vec<Option<f64>> = series.points.iter().map(|&(_, v)| v).collect();
                line.push_str(&pad(&sparkline(&values, spark_width), spark_width));
                line.push_str(GAP);
                line.push_str(figures);
            }
            None => line.push_str("(no values)"),
        }
        out.push_str(&truncate(line.trim_end(), width));
        out.push('\n');
    }
    out
}

/// `min X max Y last Z` (the minimum and maximum over every value, infinities included),
/// or `None` for a series without a value.
fn figures(points: &[(u32, Option<f64>)]) -> Option<String> {
    let values = || points.iter().filter_map(|&(_, v)| v);
    let last = values().next_back()?;
    let min = values().fold(f64::INFINITY, f64::min);
    let max = values().fold(f64::NEG_INFINITY, f64::max);
    Some(format!(
        "min {} max {} last {}",
        figure(min),
        figure(max),
        figure(last)
    ))
}

/// A value in Rust's shortest form, or rounded to six significant digits when that is long
/// (`0.30000000000000004` is `0.3`, `123456789012.5` is `1.235e11`).
fn figure(value: f64) -> String {
    let plain = value.to_string();
    if plain.len() <= MAX_FIGURE || !value.is_finite() {
        return plain;
    }
    let exponent = value.abs().log10().floor();
    if (-4.0..10.0).contains(&exponent) {
        let decimals = (5.0 - exponent).max(0.0) as usize;
        let rounded = format!("{value:.decimals$}");
        if rounded.contains('.') {
            rounded
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        } else {
            rounded
        }
    } else {
        format!("{value:.3e}")
    }
}

/// The sparkline of `values` in at most `width` characters: one per value when they fit,
/// else one per run of neighbouring values, averaged.
fn sparkline(values: &[Option<f64>], width: usize) -> String {
    let finite = || values.iter().flatten().copied().filter(|v| v.is_finite());
    let low = finite().fold(f64::INFINITY, f64::min);
    let high = finite().fold(f64::NEG_INFINITY, f64::max);
    let chars = values.len().min(width);
    (0..chars)
        .map(|i| {
            let run = &values[i * values.len() / chars..(i + 1) * values.len() / chars];
            let (sum, count) = run
                .iter()
                .flatten()
                .filter(|v| v.is_finite())
                .fold((0.0, 0usize), |(sum, count), v| (sum + v, count + 1));
            if count > 0 {
                bar(sum / count as f64, low, high)
            } else if run.contains(&Some(f64::INFINITY)) {
                BARS[BARS.len() - 1]
            } else if run.contains(&Some(f64::NEG_INFINITY)) {
                BARS[0]
            } else {
                ' '
            }
        })
        .collect()
}

/// The bar for `value` between `low` and `high` (halved first: the span of two huge values
/// of opposite signs overflows).
fn bar(value: f64, low: f64, high: f64) -> char {
    if high <= low {
        return FLAT;
    }
    let scaled = (value / 2.0 - low / 2.0) / (high / 2.0 - low / 2.0);
    let level = (scaled * (BARS.len() - 1) as f64).round();
    BARS[(level.max(0.0) as usize).min(BARS.len() - 1)]
}

/// `name` in at most `width` columns: its start and its end around a `…` when too long.
fn shorten(name: &str, width: usize) -> String {
    if columns(name) <= width {
        return name.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let head = (width - 1) / 2;
    let mut tail = width - 1 - head;
    let mut short = truncate(name, head);
    short.push('…');
    let mut end: Vec<char> = name
        .chars()
        .rev()
        .take_while(|&c| {
            let fits = column_width(c) <= tail;
            tail = tail.saturating_sub(column_width(c));
            fits
        })
        .collect();
    end.reverse();
    short.extend(end);
    short
}

/// The start of `text` that fits in `width` columns.
fn truncate(text: &str, width: usize) -> String {
    let mut left = width;
    text.chars()
        .take_while(|&c| {
            let fits = column_width(c) <= left;
            left = left.saturating_sub(column_width(c));
            fits
        })
        .collect()
}

/// `text` followed by spaces up to `width` columns.
pub fn pad(text: &str, width: usize) -> String {
    let mut padded = text.to_owned();
    padded.extend(std::iter::repeat_n(
        ' ',
        width.saturating_sub(columns(text)),
    ));
    padded
}

/// The columns `text` takes in a terminal.
pub fn columns(text: &str) -> usize {
    text.chars().map(column_width).sum()
}

/// The columns a character takes in a terminal: two for the wide ones of East Asian scripts
/// (CJK, Hangul, full-width forms) and emoji, none for combining marks, else one. Close
/// enough for names without a table of Unicode's widths.
fn column_width(c: char) -> usize {
    match u32::from(c) {
        0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F => 0,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, values: &[Option<f64>]) -> Series {
        Series {
            name: name.to_owned(),
            tags: Default::default(),
            points: values
                .iter()
                .enumerate()
                .map(|(i, &v)| (1_700_000_000 + i as u32, v))
                .collect(),
        }
    }

    fn all(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().map(|&v| Some(v)).collect()
    }

    #[test]
    fn a_rising_series_climbs_from_the_lowest_bar_to_the_highest() {
        let rising = series("app.up", &all(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]));
        assert_eq!(
            chart(&[rising], 80),
            "app.up  ▁▂▃▄▅▆▇█  min 1 max 8 last 8\n"
        );
    }

    #[test]
    fn a_flat_series_is_drawn_at_mid_height() {
        let flat = series("app.flat", &all(&[5.0; 6]));
        assert_eq!(chart(&[flat], 80), "app.flat  ▄▄▄▄▄▄  min 5 max 5 last 5\n");
    }

    #[test]
    fn nulls_are_spaces_and_last_is_the_last_value_that_is_not_null() {
        let gappy = series("a", &[Some(0.0), None, Some(10.0), Some(5.0), None]);
        assert_eq!(chart(&[gappy], 80), "a  ▁ █▅   min 0 max 10 last 5\n");
    }

    #[test]
    fn a_series_without_values_says_so() {
        let empty = series("app.none", &[None, None]);
        let some = series("app.some", &all(&[1.0, 2.0]));
        assert_eq!(
            chart(&[empty, some], 80),
            "app.none  (no values)\napp.some  ▁█  min 1 max 2 last 2\n"
        );
    }

    #[test]
    fn sparklines_and_figures_line_up_across_series() {
        let short = series("a", &all(&[1.0, 2.0]));
        let long = series("bb.cc", &all(&[3.0, 1.0, 2.0, 100.5]));
        assert_eq!(
            chart(&[short, long], 80),
            "a      ▁█    min 1 max 2 last 2\n\
             bb.cc  ▁▁▁█  min 1 max 100.5 last 100.5\n"
        );
    }

    #[test]
    fn infinities_are_left_out_of_the_scale_and_drawn_at_the_ends() {
        let odd = series(
            "x",
            &[
                Some(1.0),
                Some(f64::INFINITY),
                Some(2.0),
                Some(f64::NEG_INFINITY),
            ],
        );
        assert_eq!(chart(&[odd], 80), "x  ▁██▁  min -inf max inf last -inf\n");
    }

    #[test]
    fn a_long_name_is_shortened_in_the_middle_with_an_ellipsis() {
        let name = "production.datacenter-east.rack-42.server-0017.nginx.requests.per_second";
        let long = series(name, &all(&[1.0, 2.0, 3.0]));
        let out = chart(&[long], 60);
        assert_eq!(
            out,
            "production.datace…quests.per_second  ▁▅█  min 1 max 3 last 3\n"
        );
        assert_eq!(out.trim_end().chars().count(), 60);
    }

    #[test]
    fn many_points_are_averaged_into_one_character_per_run() {
        // 400 points in the 57 characters left: runs of 7 or 8, each averaged; the run across
        // the step holds four 0s and three 1s.
        let values: Vec<f64> = (0..400).map(|i| if i < 200 { 0.0 } else { 1.0 }).collect();
        let out = chart(&[series("m", &all(&values))], 80);
        let line = out.trim_end();
        assert_eq!(line.chars().count(), 80, "{line}");
        let spark: String = line.chars().skip(3).take(57).collect();
        assert_eq!(spark, format!("{}▄{}", "▁".repeat(28), "█".repeat(28)));
        assert!(line.ends_with("  min 0 max 1 last 1"), "{line}");
    }

    #[test]
    fn no_line_is_ever_wider_than_the_width() {
        let long_name = "a.".repeat(100);
        let many: Vec<f64> = (0..1000)
            .map(|i| (i as f64).sin() * 1e7 + 0.123_456_7)
            .collect();
        let set = [
            series(&long_name, &all(&many)),
            series("short", &all(&[1.0])),
            series(&long_name, &[None; 50]),
            series(
                "ünïcödé.名前.メトリック",
                &all(&[f64::MAX, f64::MIN, 0.1 + 0.2]),
            ),
        ];
        for width in [0, 1, 10, 20, 40, 79, 80, 81, 120, 300] {
            for line in chart(&set, width).lines() {
                assert!(
                    columns(line) <= width,
                    "{width}: {line:?} is {} wide",
                    columns(line)
                );
            }
        }
        let out = chart(&set, 80);
        for line in out.lines().filter(|line| line.starts_with("a.a.")) {
            assert!(line.contains('…'), "shortened to fit 80: {line}");
        }
    }

    #[test]
    fn long_figures_are_rounded_to_six_significant_digits() {
        assert_eq!(figure(0.1 + 0.2), "0.3");
        assert_eq!(figure(1_234_567.891), "1234568");
        assert_eq!(figure(123_456_789_012.5), "1.235e11");
        assert_eq!(figure(-0.000_012_345_678), "-1.235e-5");
        assert_eq!(figure(42.0), "42");
        assert_eq!(figure(-2.5), "-2.5");
        assert_eq!(figure(f64::INFINITY), "inf");
    }

    #[test]
    fn wide_characters_count_two_columns_in_names() {
        let wide = series("名前.メトリック", &all(&[1.0, 2.0]));
        let narrow = series("abc", &all(&[2.0, 1.0]));
        assert_eq!(
            chart(&[wide, narrow], 80),
            "名前.メトリック  ▁█  min 1 max 2 last 2\n\
             abc              █▁  min 1 max 2 last 1\n"
        );
        assert_eq!(shorten("名前.メトリック", 8), "名…ック");
    }

    #[test]
    fn no_series_is_no_lines() {
        assert_eq!(chart(&[], 80), "");
    }
}
