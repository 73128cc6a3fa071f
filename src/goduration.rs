//! Go's `time.ParseDuration` (`1h30m`, `500ms`, `1.5h`, `-2us`, `0`), shared by the bake
//! stdlib (`timeadd`) and the Dockerfile front end (HEALTHCHECK intervals).

/// Nanoseconds; the error is Go's message (`time: invalid duration "x"`).
pub fn parse_duration(s: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut num_len = int_len;
        if rest[num_len..].starts_with('.') {
            num_len += 1;
            num_len += rest[num_len..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
        }
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {s:?}"));
        }
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        total += value * scale;
        if total > 9.3e18 {
            return Err(invalid());
        }
        rest = &rest[unit_len..];
    }
    let ns = total.round() as i128;
    Ok(if neg { -ns } else { ns })
}
