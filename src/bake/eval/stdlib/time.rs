//! Date and time: formatdate, formattimestamp, timeadd, timestamp, unixtimestampparse.
//! Times are (unix seconds, nanoseconds, UTC offset in seconds); calendar fields come
//! from the proleptic Gregorian calendar, as Go's `time` package does.

use std::collections::BTreeMap;

use super::args::{number, present, string};
use super::FuncError;
use crate::bake::eval::value::{Number, Value};

/// A point in time with the UTC offset it was written with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Time {
    pub unix: i64,
    pub nanos: u32,
    pub offset: i32,
}

/// Calendar fields of a time in its own offset.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Sunday
    weekday: u32,
    /// 1-based
    year_day: u32,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Time {
    fn civil(&self) -> Civil {
        let local = self.unix + self.offset as i64;
        let days = local.div_euclid(86400);
        let secs = local.rem_euclid(86400) as u32;
        let (year, month, day) = civil_from_days(days);
        let year_day = (days - days_from_civil(year, 1, 1) + 1) as u32;
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
            year_day,
        }
    }

    /// ISO 8601 year and week number.
    fn iso_week(&self) -> (i64, u32) {
        let c = self.civil();
        // Monday = 0
        let wd = (c.weekday + 6) % 7;
        // the Thursday of this week decides the year
        let thursday_yday = c.year_day as i64 - wd as i64 + 3;
        let (mut year, mut yday) = (c.year, thursday_yday);
        if yday < 1 {
            year -= 1;
            yday += if is_leap(year) { 366 } else { 365 };
        } else {
            let len = if is_leap(year) { 366 } else { 365 };
            if yday > len {
                yday -= len;
                year += 1;
            }
        }
        (year, ((yday - 1) / 7 + 1) as u32)
    }

    /// The offset as Go's `-07:00` (`sep` = ":") or `-0700` (`sep` = "").
    fn offset_str(&self, sep: &str) -> String {
        let sign = if self.offset < 0 { '-' } else { '+' };
        let abs = self.offset.unsigned_abs();
        format!("{sign}{:02}{sep}{:02}", abs / 3600, abs / 60 % 60)
    }

    /// RFC 3339 without fractional seconds, as Go's `time.RFC3339` layout prints it.
    pub(super) fn rfc3339(&self) -> String {
        let c = self.civil();
        let zone = if self.offset == 0 {
            "Z".to_string()
        } else {
            self.offset_str(":")
        };
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }
}

fn rfc_err(msg: impl std::fmt::Display) -> String {
    format!("not a valid RFC3339 timestamp: {msg}")
}

/// Parses an RFC 3339 timestamp strictly, with cty's error messages.
pub(super) fn parse_rfc3339(s: &str) -> Result<Time, String> {
    let mut rest = s;
    let field = |rest: &mut &str, n: usize, what: &str, max: u32| -> Result<u32, String> {
        if rest.is_empty() {
            return Err(rfc_err(format!("end of string before {what}")));
        }
        let digits = rest
            .get(..n)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
        match digits {
            Some(d) => {
                let v: u32 = d
                    .parse()
                    .map_err(|_| rfc_err(format!("cannot use {rest:?} as {what}")))?;
                if v > max {
                    return Err(rfc_err(format!("cannot use {rest:?} as {what}")));
                }
                *rest = &rest[n..];
                Ok(v)
            }
            None if what == "hour" => Err(rfc_err("hour must have exactly two digits")),
            None if what == "minute" => Err(rfc_err("minute must have exactly two digits")),
            None => Err(rfc_err(format!("cannot use {rest:?} as {what}"))),
        }
    };
    let sep = |rest: &mut &str, c: char| -> Result<(), String> {
        match rest.chars().next() {
            Some(x) if x == c => {
                *rest = &rest[1..];
                Ok(())
            }
            Some(_) => Err(rfc_err(format!("found {rest:?} where \"{c}\" is expected"))),
            None => Err(rfc_err(format!("end of string where \"{c}\" is expected"))),
        }
    };
    // Range errors are worded as cty words Go's parse errors: they name what follows the
    // out-of-range field (Go reports the rest of the value at that point).
    let year = field(&mut rest, 4, "year", 9999)?;
    sep(&mut rest, '-')?;
    let month = field(&mut rest, 2, "month", 99)?;
    if !(1..=12).contains(&month) {
        return Err(rfc_err(format!("cannot use {rest:?} as month")));
    }
    sep(&mut rest, '-')?;
    // Go accepts any two-digit day here and checks it against the month at the end
    let day = field(&mut rest, 2, "day of month", 99)?;
    if !rest.starts_with('T') {
        return Err(rfc_err("missing required time introducer 'T'"));
    }
    rest = &rest[1..];
    let hour = field(&mut rest, 2, "hour", 99)?;
    if hour > 23 {
        return Err(if rest.contains(':') {
            rfc_err("hour must be between 0 and 23 inclusive")
        } else {
            rfc_err(format!("cannot use {rest:?} as hour"))
        });
    }
    sep(&mut rest, ':')?;
    let minute = field(&mut rest, 2, "minute", 99)?;
    if minute > 59 {
        return Err(if rest.len() != 2 {
            rfc_err("minute must have exactly two digits")
        } else {
            rfc_err(format!("cannot use {rest:?} as minute"))
        });
    }
    sep(&mut rest, ':')?;
    let second = field(&mut rest, 2, "second", 99)?;
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(rfc_err(format!("cannot use {rest:?} as UTC offset")));
        }
        let digits = &frac[..n];
        let mut v: u64 = 0;
        for (i, b) in digits.bytes().take(9).enumerate() {
            v += u64::from(b - b'0') * 10u64.pow(8 - i as u32);
        }
        nanos = v as u32;
        rest = &frac[n..];
    }
    if second > 59 {
        return Err(rfc_err(format!("cannot use {rest:?} as second")));
    }
    let offset: i32 = if rest == "Z" {
        0
    } else {
        let b = rest.as_bytes();
        let ok = b.len() == 6
            && (b[0] == b'+' || b[0] == b'-')
            && b[3] == b':'
            && [1, 2, 4, 5].iter().all(|&i| b[i].is_ascii_digit());
        if !ok {
            if rest.is_empty() {
                return Err(rfc_err("end of string before UTC offset"));
            }
            return Err(rfc_err(format!("cannot use {rest:?} as UTC offset")));
        }
        let hh = i32::from(b[1] - b'0') * 10 + i32::from(b[2] - b'0');
        let mm = i32::from(b[4] - b'0') * 10 + i32::from(b[5] - b'0');
        if hh >= 24 || mm >= 60 {
            return Err(rfc_err("timezone hour out of range"));
        }
        let secs = (hh * 60 + mm) * 60;
        if b[0] == b'-' {
            -secs
        } else {
            secs
        }
    };
    if day == 0 || day > days_in_month(year as i64, month) {
        return Err(rfc_err("day out of range"));
    }
    let days = days_from_civil(year as i64, month, day);
    let local = days * 86400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Ok(Time {
        unix: local - offset as i64,
        nanos,
        offset,
    })
}

/// cty's formatdate: the format letters of the `formatdate` documentation.
fn format_time(fmt: &str, t: &Time) -> Result<String, FuncError> {
    let c = t.civil();
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if ch == '\'' {
            // quoted literal; '' is a literal quote
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => return Err(FuncError::arg(0, "unterminated literal '")),
                    Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                        out.push('\'');
                        j += 2;
                    }
                    Some('\'') => break,
                    Some(x) => {
                        out.push(*x);
                        j += 1;
                    }
                }
            }
            i = j + 1;
            continue;
        }
        if !ch.is_ascii_alphabetic() {
            out.push(ch);
            i += 1;
            continue;
        }
        let mut j = i;
        while chars.get(j) == Some(&ch) {
            j += 1;
        }
        let n = j - i;
        let tok: String = chars[i..j].iter().collect();
        let bad = |why: &str| {
            Err(FuncError::arg(
                0,
                if why.is_empty() {
                    format!("invalid date format verb {tok:?}")
                } else {
                    format!("invalid date format verb {tok:?}: {why}")
                },
            ))
        };
        let h12 = if c.hour % 12 == 0 { 12 } else { c.hour % 12 };
        match (ch, n) {
            ('Y', 2) => out.push_str(&format!("{:02}", c.year.rem_euclid(100))),
            ('Y', 4) => out.push_str(&format!("{:04}", c.year)),
            ('Y', _) => return bad("year must either be \"YY\" or \"YYYY\""),
            ('M', 1) => out.push_str(&c.month.to_string()),
            ('M', 2) => out.push_str(&format!("{:02}", c.month)),
            ('M', 3) => out.push_str(&MONTHS[(c.month - 1) as usize][..3]),
            ('M', 4) => out.push_str(MONTHS[(c.month - 1) as usize]),
            ('M', _) => return bad("month must be \"M\", \"MM\", \"MMM\", or \"MMMM\""),
            ('D', 1) => out.push_str(&c.day.to_string()),
            ('D', 2) => out.push_str(&format!("{:02}", c.day)),
            ('D', _) => return bad("day of month must either be \"D\" or \"DD\""),
            ('E', 3) => out.push_str(&WEEKDAYS[c.weekday as usize][..3]),
            ('E', 4) => out.push_str(WEEKDAYS[c.weekday as usize]),
            ('E', _) => return bad("day of week must either be \"EEE\" or \"EEEE\""),
            ('h', 1) => out.push_str(&c.hour.to_string()),
            ('h', 2) => out.push_str(&format!("{:02}", c.hour)),
            ('h', _) => return bad("24-hour must either be \"h\" or \"hh\""),
            ('H', 1) => out.push_str(&h12.to_string()),
            ('H', 2) => out.push_str(&format!("{h12:02}")),
            ('H', _) => return bad("12-hour must either be \"H\" or \"HH\""),
            ('A' | 'a', 2) => {
                let pm = c.hour >= 12;
                out.push_str(match (ch == 'A', pm) {
                    (true, false) => "AM",
                    (true, true) => "PM",
                    (false, false) => "am",
                    (false, true) => "pm",
                })
            }
            ('A' | 'a', _) => return bad(&format!("must be \"{ch}{ch}\"")),
            ('m', 1) => out.push_str(&c.minute.to_string()),
            ('m', 2) => out.push_str(&format!("{:02}", c.minute)),
            ('m', _) => return bad("minute must either be \"m\" or \"mm\""),
            ('s', 1) => out.push_str(&c.second.to_string()),
            ('s', 2) => out.push_str(&format!("{:02}", c.second)),
            ('s', _) => return bad("second must either be \"s\" or \"ss\""),
            ('Z', 1) if t.offset == 0 => out.push('Z'),
            ('Z', 1) => out.push_str(&t.offset_str(":")),
            ('Z', 3) if t.offset == 0 => out.push_str("UTC"),
            ('Z', 3) | ('Z', 4) => out.push_str(&t.offset_str("")),
            ('Z', 5) => out.push_str(&t.offset_str(":")),
            ('Z', _) => return bad("timezone must be Z, ZZZZ, or ZZZZZ"),
            _ => return bad(""),
        }
        i = j;
    }
    Ok(out)
}

pub(super) fn formatdate(a: &[Value]) -> Result<Value, FuncError> {
    let fmt = string(a, 0)?;
    let ts = string(a, 1)?;
    let t = parse_rfc3339(&ts).map_err(|e| FuncError::arg(1, e))?;
    format_time(&fmt, &t).map(Value::String)
}

/// A unix timestamp number as a UTC time.
fn unix_time(n: Number, arg: usize) -> Result<Time, FuncError> {
    let secs = n
        .as_i64()
        .ok_or_else(|| FuncError::arg(arg, "unix timestamp must be an integer"))?;
    // keep the calendar arithmetic far from overflow (Go's range is wider but
    // such instants are meaningless in a build file)
    if secs.unsigned_abs() > 1 << 50 {
        return Err(FuncError::arg(arg, "unix timestamp out of range"));
    }
    Ok(Time {
        unix: secs,
        nanos: 0,
        offset: 0,
    })
}

pub(super) fn formattimestamp(a: &[Value]) -> Result<Value, FuncError> {
    let fmt = string(a, 0)?;
    match present(a, 1)? {
        Value::String(s) => {
            if fmt == "X" {
                let t = parse_rfc3339(s)
                    .map_err(|_| FuncError::arg(1, "timestamp string must be RFC3339"))?;
                return Ok(Value::String(t.unix.to_string()));
            }
            let t = parse_rfc3339(s).map_err(|e| FuncError::arg(1, e))?;
            format_time(&fmt, &t).map(Value::String)
        }
        Value::Number(n) => {
            let t = unix_time(*n, 1)?;
            if fmt == "X" {
                return Ok(Value::String(t.unix.to_string()));
            }
            format_time(&fmt, &t).map(Value::String)
        }
        _ => Err(FuncError::arg(
            1,
            "must be a string timestamp or a unix timestamp number",
        )),
    }
}

pub(super) fn unixtimestampparse(a: &[Value]) -> Result<Value, FuncError> {
    let t = unix_time(number(a, 0)?, 0)?;
    let c = t.civil();
    let (iso_year, iso_week) = t.iso_week();
    let n = |x: i64| Value::int(x);
    let fields: BTreeMap<String, Value> = [
        ("year", n(c.year)),
        ("year_day", n(c.year_day.into())),
        ("day", n(c.day.into())),
        ("month", n(c.month.into())),
        ("month_name", Value::string(MONTHS[(c.month - 1) as usize])),
        ("weekday", n(c.weekday.into())),
        ("weekday_name", Value::string(WEEKDAYS[c.weekday as usize])),
        ("hour", n(c.hour.into())),
        ("minute", n(c.minute.into())),
        ("second", n(c.second.into())),
        ("rfc3339", Value::String(t.rfc3339())),
        ("iso_year", n(iso_year)),
        ("iso_week", n(iso_week.into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(Value::Object(fields))
}

pub(super) fn timestamp(_a: &[Value]) -> Result<Value, FuncError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok(Value::String(
        Time {
            unix: now,
            nanos: 0,
            offset: 0,
        }
        .rfc3339(),
    ))
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub(super) fn parse_duration(s: &str) -> Result<i128, String> {
    crate::goduration::parse_duration(s)
}

pub(super) fn timeadd(a: &[Value]) -> Result<Value, FuncError> {
    let ts = string(a, 0)?;
    let dur = string(a, 1)?;
    let t = parse_rfc3339(&ts).map_err(FuncError::new)?;
    let d = parse_duration(&dur).map_err(FuncError::new)?;
    let total = i128::from(t.unix) * 1_000_000_000 + i128::from(t.nanos) + d;
    let unix = total.div_euclid(1_000_000_000);
    let unix = i64::try_from(unix)
        .ok()
        .filter(|u| u.unsigned_abs() < 1 << 50)
        .ok_or_else(|| FuncError::new("resulting time is out of range"))?;
    let out = Time {
        unix,
        nanos: total.rem_euclid(1_000_000_000) as u32,
        offset: t.offset,
    };
    Ok(Value::String(out.rfc3339()))
}
