//! Go's `time.ParseDuration`, for HEALTHCHECK intervals: `1m30s`, `500ms`, `1.5h`, `0`.

/// Nanoseconds, or `None` when the text is not a Go duration.
pub(crate) fn parse_go_duration(s: &str) -> Option<i64> {
    crate::goduration::parse_duration(s)
        .ok()
        .and_then(|n| i64::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("1m30s", Some(90_000_000_000)),
            ("500ms", Some(500_000_000)),
            ("1.5h", Some(5_400_000_000_000)),
            ("2us", Some(2_000)),
            ("10", None),
            ("", None),
            ("1x", None),
            ("s", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_go_duration(s), *want, "{s:?}");
        }
    }
}
