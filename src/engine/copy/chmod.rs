//! `--chmod` values: octal (`755`, `0644`) or symbolic (`u+x,g-w`, `a=rX`), as BuildKit
//! accepts them (symbolic forms follow chmod(1): `[ugoa]*[-+=][rwxXst]*`, comma separated).

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    Octal(u32),
    Symbolic(Vec<Clause>),
}

/// One `who op perms` clause of a symbolic mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// Bits the clause may touch (`u` = 0o4700 etc.); `a` or nothing = all.
    who: u32,
    op: char,
    perms: String,
}

impl Chmod {
    /// Parses a `--chmod` value; `None` when it is neither octal nor symbolic.
    pub fn parse(s: &str) -> Option<Chmod> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        if s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            let v = u32::from_str_radix(s, 8).ok()?;
            return (v <= 0o7777).then_some(Chmod::Octal(v));
        }
        let mut clauses = Vec::new();
        for part in s.split(',') {
            let op_at = part.find(['+', '-', '='])?;
            let (who_s, rest) = part.split_at(op_at);
            let mut who = 0;
            for c in who_s.chars() {
                who |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return None,
                };
            }
            if who == 0 {
                who = 0o7777;
            }
            let mut chars = rest.chars();
            let op = chars.next()?;
            let perms: String = chars.collect();
            if !perms.chars().all(|c| "rwxXst".contains(c)) {
                return None;
            }
            clauses.push(Clause { who, op, perms });
        }
        Some(Chmod::Symbolic(clauses))
    }

    /// The mode of an entry with mode `mode` after the change.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(v) => *v,
            Chmod::Symbolic(clauses) => {
                let mut m = mode & 0o7777;
                for c in clauses {
                    let mut bits = 0;
                    for p in c.perms.chars() {
                        bits |= match p {
                            'r' => 0o444,
                            'w' => 0o222,
                            'x' => 0o111,
                            'X' if is_dir || m & 0o111 != 0 => 0o111,
                            's' => 0o6000,
                            't' => 0o1000,
                            _ => 0,
                        };
                    }
                    let bits = bits & c.who;
                    m = match c.op {
                        '+' => m | bits,
                        '-' => m & !bits,
                        _ => (m & !(c.who & 0o777)) | bits,
                    };
                }
                m
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_symbolic() {
        assert_eq!(Chmod::parse("755"), Some(Chmod::Octal(0o755)));
        assert_eq!(Chmod::parse("0644").unwrap().apply(0o777, false), 0o644);
        let c = Chmod::parse("u+x,g-r").unwrap();
        assert_eq!(c.apply(0o644, false), 0o704);
        let c = Chmod::parse("a=rX").unwrap();
        assert_eq!(c.apply(0o644, false), 0o444);
        assert_eq!(c.apply(0o755, false), 0o555);
        assert_eq!(c.apply(0o700, true), 0o555);
        assert_eq!(Chmod::parse("go-w").unwrap().apply(0o777, false), 0o755);
        assert_eq!(Chmod::parse("+t").unwrap().apply(0o777, true), 0o1777);
        assert!(Chmod::parse("u+q").is_none());
        assert!(Chmod::parse("99").is_none());
        assert!(Chmod::parse("").is_none());
    }
}
