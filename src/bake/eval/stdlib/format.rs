//! `format` and `formatlist`: printf-like verbs with cty's rules.
//!
//! A verb is `%` then flags (`0 # - + space`), a width, a `.precision`, an optional
//! `[n]` argument index, and a letter: `%v %#v %t %b %d %o %x %X %e %E %f %g %G %s %q`,
//! and `%%` for a literal percent sign. Widths and string precisions count grapheme
//! clusters. Numbers are formatted as Go formats big numbers (at f64 precision here).

use unicode_segmentation::UnicodeSegmentation;

use super::args::string;
use super::encoding::{json_quote, json_string};
use super::FuncError;
use crate::bake::eval::convert::convert;
use crate::bake::eval::value::{Number, Type, Value};

#[derive(Default, Debug)]
struct Verb {
    raw: String,
    offset: usize,
    arg: usize,
    mode: char,
    zero: bool,
    sharp: bool,
    plus: bool,
    minus: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Bounds widths and precisions so a hostile format string cannot allocate gigabytes.
const MAX_WIDTH: usize = 1 << 16;

/// Formats `fmt` with `args`; a `FuncError` with an argument index points into the whole
/// call (the format string is argument 0).
fn format_str(fmt: &str, args: &[Value]) -> Result<String, FuncError> {
    let mut out = String::new();
    let mut next_arg = 1usize;
    let mut highest = 0usize;
    let bytes = fmt.as_bytes();
    let mut p = 0;
    while p < fmt.len() {
        let Some(rel) = fmt[p..].find('%') else {
            out.push_str(&fmt[p..]);
            break;
        };
        out.push_str(&fmt[p..p + rel]);
        let start = p + rel;
        p = start + 1;
        if bytes.get(p) == Some(&b'%') {
            out.push('%');
            p += 1;
            continue;
        }
        let mut v = Verb {
            offset: start,
            arg: next_arg,
            ..Verb::default()
        };
        while let Some(&c) = bytes.get(p) {
            match c {
                b'0' => v.zero = true,
                b'#' => v.sharp = true,
                b'-' => v.minus = true,
                b'+' => v.plus = true,
                b' ' => v.space = true,
                _ => break,
            }
            p += 1;
        }
        let read_num = |p: &mut usize| -> Option<usize> {
            let s = *p;
            while bytes.get(*p).is_some_and(u8::is_ascii_digit) {
                *p += 1;
            }
            (s != *p).then(|| fmt[s..*p].parse::<usize>().unwrap_or(usize::MAX))
        };
        if bytes.get(p).is_some_and(|b| (b'1'..=b'9').contains(b)) {
            v.width = read_num(&mut p);
        }
        if bytes.get(p) == Some(&b'.') {
            p += 1;
            v.prec = Some(read_num(&mut p).unwrap_or(0));
        }
        if bytes.get(p) == Some(&b'[') {
            p += 1;
            if !bytes.get(p).is_some_and(|b| (b'1'..=b'9').contains(b)) {
                return Err(bad_char(fmt, p));
            }
            let n = read_num(&mut p).unwrap_or(usize::MAX);
            if bytes.get(p) != Some(&b']') {
                return Err(bad_char(fmt, p));
            }
            p += 1;
            v.arg = n;
        }
        if v.width.is_some_and(|w| w > MAX_WIDTH) || v.prec.is_some_and(|w| w > MAX_WIDTH) {
            return Err(FuncError::new(format!(
                "invalid format string starting at offset {start}: width or precision too large"
            )));
        }
        let Some(mode) = fmt[p..].chars().next() else {
            return Err(FuncError::new(format!(
                "invalid format string starting at offset {start}"
            )));
        };
        if !mode.is_ascii_alphabetic() {
            return Err(bad_char(fmt, p));
        }
        p += 1;
        v.mode = mode;
        v.raw = fmt[start..p].to_string();
        highest = highest.max(v.arg);
        append(&v, &mut out, args)?;
        next_arg = v.arg + 1;
    }
    if args.len() > highest {
        let first_bad = highest + 1;
        return Err(FuncError::arg(
            first_bad,
            if highest == 0 {
                "too many arguments; no verbs in format string".to_string()
            } else {
                format!("too many arguments; only {highest} used by format string")
            },
        ));
    }
    Ok(out)
}

/// cty's grammar error for the character at byte offset `p` (or the end of the string).
fn bad_char(fmt: &str, p: usize) -> FuncError {
    match fmt.get(p..).and_then(|r| r.chars().next()) {
        Some(c) => FuncError::new(format!("unrecognized format character {c:?} at offset {p}")),
        None => FuncError::new(format!(
            "invalid format string starting at offset {}",
            fmt.len()
        )),
    }
}

fn unsupported(v: &Verb, why: impl std::fmt::Display) -> FuncError {
    FuncError::new(format!(
        "unsupported value for {:?} at {}: {why}",
        v.raw, v.offset
    ))
}

fn append(v: &Verb, out: &mut String, args: &[Value]) -> Result<(), FuncError> {
    let Some(arg) = args.get(v.arg - 1) else {
        return Err(FuncError::new(format!(
            "not enough arguments for {:?} at {}: need index {} but have {} total",
            v.raw,
            v.offset,
            v.arg,
            args.len()
        )));
    };
    if v.mode != 'v' && arg.is_null() {
        return Err(unsupported(v, "null value cannot be formatted"));
    }
    match v.mode {
        'v' => {
            let s = match arg {
                Value::String(s) if !v.sharp => s.clone(),
                Value::Number(n) if !v.sharp => fmt_g(n.as_f64(), None, false),
                other => json_string(other).map_err(|e| unsupported(v, e))?,
            };
            out.push_str(&pad_width(v, s));
        }
        't' => match convert(arg, &Type::Bool).map_err(|e| unsupported(v, e))? {
            Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            _ => return Err(unsupported(v, "a bool is required")),
        },
        'b' | 'd' | 'o' | 'x' | 'X' | 'e' | 'E' | 'f' | 'g' | 'G' => {
            let n = match convert(arg, &Type::Number).map_err(|e| unsupported(v, e))? {
                Value::Number(n) => n,
                _ => return Err(unsupported(v, "a number is required")),
            };
            if matches!(v.mode, 'b' | 'd' | 'o' | 'x' | 'X') {
                let i = n
                    .as_i64()
                    .ok_or_else(|| unsupported(v, "an integer is required"))?;
                out.push_str(&fmt_int(v, i));
            } else {
                out.push_str(&fmt_float(v, n));
            }
        }
        's' | 'q' => {
            let s = match convert(arg, &Type::String).map_err(|e| unsupported(v, e))? {
                Value::String(s) => s,
                _ => return Err(unsupported(v, "string required")),
            };
            let s = match v.prec {
                Some(p) if p > 0 => s.graphemes(true).take(p).collect::<String>(),
                _ => s,
            };
            let s = if v.mode == 'q' {
                let mut q = String::new();
                json_quote(&s, &mut q);
                q
            } else {
                s
            };
            out.push_str(&pad_width(v, s));
        }
        m => {
            return Err(FuncError::new(format!(
                "unsupported format verb {m:?} in {:?} at offset {}",
                v.raw, v.offset
            )))
        }
    }
    Ok(())
}

/// cty's padding for %v, %s, %q: by grapheme clusters, '0' or ' ', left or right.
fn pad_width(v: &Verb, s: String) -> String {
    let Some(w) = v.width else { return s };
    let len = s.graphemes(true).count();
    if len >= w {
        return s;
    }
    let pad = (if v.zero { "0" } else { " " }).repeat(w - len);
    if v.minus {
        s + &pad
    } else {
        pad + &s
    }
}

/// Go's numeric padding: sign, then zeros or spaces to the width.
fn pad_number(v: &Verb, negative: bool, prefix: &str, digits: &str, zero_ok: bool) -> String {
    let sign = if negative {
        "-"
    } else if v.plus {
        "+"
    } else if v.space {
        " "
    } else {
        ""
    };
    let body_len = sign.len() + prefix.len() + digits.chars().count();
    let w = v.width.unwrap_or(0);
    if body_len >= w {
        return format!("{sign}{prefix}{digits}");
    }
    let fill = w - body_len;
    if v.minus {
        format!("{sign}{prefix}{digits}{}", " ".repeat(fill))
    } else if v.zero && zero_ok {
        format!("{sign}{prefix}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{sign}{prefix}{digits}", " ".repeat(fill))
    }
}

fn fmt_int(v: &Verb, i: i64) -> String {
    let neg = i < 0;
    let a = i.unsigned_abs();
    let mut digits = match v.mode {
        'b' => format!("{a:b}"),
        'o' => format!("{a:o}"),
        'x' => format!("{a:x}"),
        'X' => format!("{a:X}"),
        _ => a.to_string(),
    };
    if let Some(p) = v.prec {
        if p == 0 && a == 0 {
            digits.clear();
        } else if digits.len() < p {
            digits = "0".repeat(p - digits.len()) + &digits;
        }
    }
    let prefix = match (v.sharp, v.mode) {
        (true, 'b') => "0b",
        (true, 'o') if !digits.starts_with('0') => "0",
        (true, 'x') => "0x",
        (true, 'X') => "0X",
        _ => "",
    };
    pad_number(v, neg, prefix, &digits, v.prec.is_none())
}

/// Go's exponent style: `e+03`.
fn go_exp(rust: &str, upper: bool) -> String {
    let (mant, exp) = match rust.split_once('e') {
        Some(x) => x,
        None => return rust.to_string(),
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    let e = if upper { 'E' } else { 'e' };
    format!("{mant}{e}{sign}{digits:0>2}")
}

/// Decimal digits and exponent (value = 0.DIGITS × 10^exp) of |x|: shortest, or rounded
/// to `sig` significant digits, trailing zeros removed.
fn decimal(x: f64, sig: Option<usize>) -> (String, i32) {
    let s = match sig {
        None => format!("{:e}", x.abs()),
        Some(p) => format!("{:.*e}", p.max(1) - 1, x.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0').to_string();
    if digits.is_empty() {
        return ("0".to_string(), 1);
    }
    (digits, exp + 1)
}

/// Go's `%g` for a big float: shortest when `prec` is None.
fn fmt_g(x: f64, prec: Option<usize>, upper: bool) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let shortest = prec.is_none();
    let (mant, dexp) = decimal(x, prec.map(|p| p.max(1)));
    let mut p = if shortest {
        mant.len()
    } else {
        prec.unwrap_or(6).max(1)
    };
    let mut eprec = p;
    if eprec > mant.len() && mant.len() as i32 >= dexp {
        eprec = mant.len();
    }
    if shortest {
        eprec = 6;
    }
    let exp = dexp - 1;
    let sign = if x < 0.0 { "-" } else { "" };
    if exp < -4 || exp >= eprec as i32 {
        if p > mant.len() {
            p = mant.len();
        }
        let s = format!("{:.*e}", p - 1, x.abs());
        return format!("{sign}{}", go_exp(&s, upper));
    }
    if p as i32 > dexp {
        p = mant.len();
    }
    let frac = (p as i32 - dexp).max(0) as usize;
    format!("{sign}{:.*}", frac, x.abs())
}

fn fmt_float(v: &Verb, n: Number) -> String {
    let x = n.as_f64();
    let body = match v.mode {
        'e' | 'E' => {
            let s = format!("{:.*e}", v.prec.unwrap_or(6), x.abs());
            go_exp(&s, v.mode == 'E')
        }
        'f' => format!("{:.*}", v.prec.unwrap_or(6), x.abs()),
        _ => fmt_g(x.abs(), v.prec, v.mode == 'G'),
    };
    let body = if x.is_infinite() {
        "Inf".to_string()
    } else {
        body
    };
    pad_number(v, x < 0.0, "", &body, !x.is_infinite())
}

pub(super) fn format(a: &[Value]) -> Result<Value, FuncError> {
    let fmt = string(a, 0)?;
    format_str(&fmt, &a[1..]).map(Value::String)
}

pub(super) fn formatlist(a: &[Value]) -> Result<Value, FuncError> {
    let fmt = string(a, 0)?;
    let rest = &a[1..];
    let mut iter_len: Option<(usize, usize)> = None;
    for (i, v) in rest.iter().enumerate() {
        if let Some(e) = v.as_seq() {
            match iter_len {
                None => iter_len = Some((e.len(), i)),
                Some((n, j)) if n != e.len() => {
                    return Err(FuncError::arg(
                        i + 1,
                        format!(
                            "argument {} has length {}, which is inconsistent with argument {} of length {}",
                            i + 1,
                            e.len(),
                            j + 1,
                            n
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    let n = iter_len.map(|(n, _)| n).unwrap_or(1);
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let call: Vec<Value> = rest
            .iter()
            .map(|v| match v.as_seq() {
                Some(e) => e.get(k).cloned().unwrap_or(Value::null()),
                None => v.clone(),
            })
            .collect();
        let s = format_str(&fmt, &call).map_err(|e| FuncError {
            message: format!("error on format iteration {k}: {}", e.message),
            arg: None,
        })?;
        out.push(Value::String(s));
    }
    Ok(Value::List(out))
}
