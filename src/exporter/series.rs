//! What a `metrics` key is written as: its path and tags, cleaned with the name encoder.

use std::fmt::Write as _;

use metrics::Key;

use super::LabelMode;
use crate::point::names::NameEncoder;
use crate::point::validate;

/// The path and tags one registered metric is written under (a histogram adds a segment per
/// statistic to the path).
#[derive(Debug)]
pub(super) struct Series {
    /// The exporter's prefix, the name's segments, and in path mode the labels' values.
    pub(super) path: Box<str>,
    /// Tag mode: the labels, cleaned, in key order.
    pub(super) tags: Box<[(Box<str>, Box<str>)]>,
}

impl Series {
    /// The line's name as Carbon files it (`path;k=v`), for telling series apart.
    pub(super) fn id(&self, path: &str) -> String {
        let mut id = path.to_owned();
        for (key, value) in &self.tags {
            let _ = write!(id, ";{key}={value}");
        }
        id
    }
}

/// How keys become series: the exporter's prefix, the label mode and the encoder.
#[derive(Debug)]
pub(super) struct Naming {
    /// Checked when building; joined with a `.`.
    pub(super) prefix: Option<String>,
    pub(super) labels: LabelMode,
    pub(super) encoder: NameEncoder,
}

impl Naming {
    /// The series of `key`: every `.`-separated segment of its name cleaned with the
    /// encoder, then its labels, sorted by label key, as tags or as path segments.
    pub(super) fn series(&self, key: &Key) -> Series {
        let mut path = self.prefix.clone().unwrap_or_default();
        for segment in key.name().split('.') {
            push_segment(&mut path, &self.encoder.part(segment));
        }
        let mut labels: Vec<_> = key.labels().collect();
        // Stable: labels given twice keep their order (as tags, the later one wins).
        labels.sort_by(|a, b| a.key().cmp(b.key()));
        let tags = match self.labels {
            LabelMode::Path => {
                for label in labels {
                    push_segment(&mut path, &self.encoder.part(label.value()));
                }
                Box::default()
            }
            LabelMode::Tags => labels
                .into_iter()
                .map(|label| (self.tag_key(label.key()), self.tag_value(label.value())))
                .collect(),
        };
        Series {
            path: path.into_boxed_str(),
            tags,
        }
    }

    /// A label's key as a tag name: kept when the tag rules take it, else cleaned with the
    /// encoder (and with `Strict` if that is not enough). `name`, which Carbon reserves,
    /// becomes `name_`.
    fn tag_key(&self, key: &str) -> Box<str> {
        if key == "name" {
            return "name_".into();
        }
        let valid = |key: &str| key != "name" && validate::check_tag(key, "v").is_ok();
        if valid(key) {
            return key.into();
        }
        let cleaned = self.encoder.tag_value(key);
        if valid(&cleaned) {
            return cleaned.into();
        }
        let strict = NameEncoder::Strict.tag_value(key);
        if valid(&strict) {
            strict.into()
        } else {
            format!("{strict}_").into()
        }
    }

    /// A label's value as a tag value: kept when the tag rules take it, else cleaned with
    /// the encoder (and with `Strict` if that is not enough).
    fn tag_value(&self, value: &str) -> Box<str> {
        let valid = |value: &str| validate::check_tag("k", value).is_ok();
        if valid(value) {
            return value.into();
        }
        let cleaned = self.encoder.tag_value(value);
        if valid(&cleaned) {
            cleaned.into()
        } else {
            NameEncoder::Strict.tag_value(value).into()
        }
    }
}

fn push_segment(path: &mut String, segment: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(segment);
}

/// The path segment of a percentile: `p` and the quantile's digits after `0.`, at least
/// two (0.5 → `p50`, 0.999 → `p999`, 0.05 → `p05`); 0 → `p0`, 1 → `p100`.
pub(super) fn percentile_segment(quantile: f64) -> String {
    if quantile <= 0.0 {
        return "p0".into();
    }
    if quantile >= 1.0 {
        return "p100".into();
    }
    let text = quantile.to_string();
    let digits = text.strip_prefix("0.").unwrap_or(&text);
    format!("p{digits:0<2}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::Label;

    fn naming(labels: LabelMode) -> Naming {
        Naming {
            prefix: None,
            labels,
            encoder: NameEncoder::Strict,
        }
    }

    #[test]
    fn percentile_segments_are_the_quantiles_digits() {
        let cases = [
            (0.5, "p50"),
            (0.9, "p90"),
            (0.99, "p99"),
            (0.999, "p999"),
            (0.05, "p05"),
            (0.75, "p75"),
            (0.0, "p0"),
            (1.0, "p100"),
        ];
        for (q, segment) in cases {
            assert_eq!(percentile_segment(q), segment, "{q}");
        }
    }

    #[test]
    fn tag_keys_and_values_are_kept_when_valid_and_cleaned_when_not() {
        let naming = naming(LabelMode::Tags);
        let key = Key::from_parts(
            "a",
            vec![
                Label::new("route", "/api/v1"),
                Label::new("name", "x"),
                Label::new("a=b", "GET /x y"),
                Label::new("tilde", "~home"),
            ],
        );
        let series = naming.series(&key);
        let tags: Vec<(&str, &str)> = series.tags.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(
            tags,
            [
                ("a_b", "GET__x_y"),
                ("name_", "x"),
                ("route", "/api/v1"),
                ("tilde", "_home")
            ]
        );
        for (key, value) in tags {
            validate::check_tag(key, value).unwrap();
        }
    }

    #[test]
    fn path_mode_appends_label_values_in_key_order() {
        let naming = Naming {
            prefix: Some("app".into()),
            ..naming(LabelMode::Path)
        };
        let key = Key::from_parts(
            "http.requests",
            vec![Label::new("status", "200"), Label::new("method", "GET")],
        );
        let series = naming.series(&key);
        assert_eq!(&*series.path, "app.http.requests.GET.200");
        assert!(series.tags.is_empty());
    }
}
