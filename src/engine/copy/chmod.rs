//! `--chmod` values: octal (`755`, `0644`) or symbolic (`u+x,g-w`, `a=rX`, `u=rwx,go=u-w`),
//! as BuildKit accepts them. Symbolic modes are BSD `setmode(3)` semantics through
//! BuildKit's `tonistiigi/dchapes-mode` (umask 0), ported here step by step: parse to
//! bit commands, compress runs of `+`/`-`/`X`, apply to each copied file's mode.

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// Replaces the whole mode (setuid/setgid/sticky included).
    Octal(u32),
    Symbolic(Vec<BitCmd>),
}

/// One bit command of a symbolic mode (dchapes-mode's `bitcmd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitCmd {
    /// `+`, `-`, `X` (add x if a directory or some x was set), or `u`/`g`/`o` (copy
    /// that class's bits, `cmd2` says how and to which classes).
    cmd: u8,
    cmd2: u8,
    bits: u32,
}

const IS_UID: u32 = 0o4000;
const IS_GID: u32 = 0o2000;
const IS_TXT: u32 = 0o1000;
const IRWXU: u32 = 0o700;
const IRWXG: u32 = 0o070;
const IRWXO: u32 = 0o007;
const STANDARD_BITS: u32 = IS_UID | IS_GID | IRWXU | IRWXG | IRWXO;
const CMD2_CLEAR: u8 = 1;
const CMD2_SET: u8 = 2;
const CMD2_GBITS: u8 = 4;
const CMD2_OBITS: u8 = 8;
const CMD2_UBITS: u8 = 16;

fn addcmd(cmds: &mut Vec<BitCmd>, op: u8, who: u32, oparg: u32, mask: u32) {
    let mut op = op;
    if op == b'=' {
        cmds.push(BitCmd {
            cmd: b'-',
            cmd2: 0,
            bits: if who != 0 { who } else { STANDARD_BITS },
        });
        op = b'+';
    }
    let mut c = BitCmd {
        cmd: op,
        cmd2: 0,
        bits: 0,
    };
    match op {
        b'u' | b'g' | b'o' => {
            if who != 0 {
                if who & 0o400 != 0 {
                    c.cmd2 |= CMD2_UBITS;
                }
                if who & 0o040 != 0 {
                    c.cmd2 |= CMD2_GBITS;
                }
                if who & 0o004 != 0 {
                    c.cmd2 |= CMD2_OBITS;
                }
                c.bits = !0;
            } else {
                c.cmd2 = CMD2_UBITS | CMD2_GBITS | CMD2_OBITS;
                c.bits = mask;
            }
            c.cmd2 |= match oparg as u8 {
                b'+' => CMD2_SET,
                b'-' => CMD2_CLEAR,
                _ => CMD2_SET | CMD2_CLEAR,
            };
        }
        _ => c.bits = if who != 0 { who & oparg } else { mask & oparg },
    }
    cmds.push(c);
}

/// Merges each run of `+`, `-` and `X` commands into at most one of each.
fn compress(cmds: Vec<BitCmd>) -> Vec<BitCmd> {
    let mut out = Vec::with_capacity(cmds.len());
    let mut i = 0;
    while i < cmds.len() {
        if !b"+-X".contains(&cmds[i].cmd) {
            out.push(cmds[i]);
            i += 1;
            continue;
        }
        let (mut set, mut clr, mut x) = (0, 0, 0);
        while let Some(c) = cmds.get(i) {
            match c.cmd {
                b'-' => {
                    clr |= c.bits;
                    set &= !c.bits;
                    x &= !c.bits;
                }
                b'+' => {
                    set |= c.bits;
                    clr &= !c.bits;
                    x &= !c.bits;
                }
                b'X' => x |= c.bits & !set,
                _ => break,
            }
            i += 1;
        }
        for (cmd, bits) in [(b'-', clr), (b'+', set), (b'X', x)] {
            if bits != 0 {
                out.push(BitCmd { cmd, cmd2: 0, bits });
            }
        }
    }
    out
}

fn parse_symbolic(s: &str) -> Option<Vec<BitCmd>> {
    let b = s.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mask: u32 = !0;
    let mut cmds = Vec::new();
    let mut i = 0;
    let mut equal_op_done = false;
    loop {
        let mut who = 0;
        loop {
            if i >= b.len() {
                return None;
            }
            who |= match b[i] {
                b'a' => STANDARD_BITS,
                b'u' => IS_UID | IRWXU,
                b'g' => IS_GID | IRWXG,
                b'o' => IRWXO,
                _ => break,
            };
            i += 1;
        }
        // One or more `op perms` after the who letters.
        loop {
            let op = at(i);
            i += 1;
            match op {
                b'+' | b'-' => {}
                b'=' => equal_op_done = false,
                _ => return None,
            }
            who &= !IS_TXT;
            let (mut perm, mut perm_x) = (0, 0);
            loop {
                let c = at(i);
                match c {
                    b'r' => perm |= 0o444,
                    b's' => {
                        if who == 0 || who & !IRWXO != 0 {
                            perm |= IS_UID | IS_GID;
                        }
                    }
                    b't' => {
                        if who == 0 || who & !IRWXO != 0 {
                            who |= IS_TXT;
                            perm |= IS_TXT;
                        }
                    }
                    b'w' => perm |= 0o222,
                    b'X' => {
                        if op != b'-' {
                            perm_x = 0o111;
                        } else {
                            perm |= 0o111;
                        }
                    }
                    b'x' => perm |= 0o111,
                    b'u' | b'g' | b'o' => {
                        if perm != 0 {
                            addcmd(&mut cmds, op, who, perm, mask);
                            perm = 0;
                        }
                        if op == b'=' {
                            equal_op_done = true;
                        }
                        if perm_x != 0 {
                            addcmd(&mut cmds, b'X', who, perm_x, mask);
                            perm_x = 0;
                        }
                        addcmd(&mut cmds, c, who, u32::from(op), mask);
                    }
                    _ => {
                        if perm != 0 || op == b'=' && !equal_op_done {
                            if op == b'=' {
                                equal_op_done = true;
                            }
                            addcmd(&mut cmds, op, who, perm, mask);
                        }
                        if perm_x != 0 {
                            addcmd(&mut cmds, b'X', who, perm_x, mask);
                        }
                        break;
                    }
                }
                i += 1;
            }
            if i >= b.len() {
                return Some(compress(cmds));
            }
            if b[i] == b',' {
                i += 1;
                break;
            }
        }
    }
}

impl Chmod {
    pub fn parse(s: &str) -> Option<Chmod> {
        if s.is_empty() {
            return None;
        }
        if s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            let v = u32::from_str_radix(s, 8).ok()?;
            return (v <= 0o7777).then_some(Chmod::Octal(v));
        }
        if s.as_bytes()[0].is_ascii_digit() {
            return None;
        }
        parse_symbolic(s).map(Chmod::Symbolic)
    }

    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let cmds = match self {
            Chmod::Octal(v) => return *v,
            Chmod::Symbolic(c) => c,
        };
        let omode = mode & 0o7777;
        let mut m = omode;
        for c in cmds {
            let common = |m: &mut u32, value: u32| {
                if c.cmd2 & CMD2_CLEAR != 0 {
                    let clr = if c.cmd2 & CMD2_SET != 0 { IRWXO } else { value };
                    if c.cmd2 & CMD2_UBITS != 0 {
                        *m &= !((clr << 6) & c.bits);
                    }
                    if c.cmd2 & CMD2_GBITS != 0 {
                        *m &= !((clr << 3) & c.bits);
                    }
                    if c.cmd2 & CMD2_OBITS != 0 {
                        *m &= !(clr & c.bits);
                    }
                }
                if c.cmd2 & CMD2_SET != 0 {
                    if c.cmd2 & CMD2_UBITS != 0 {
                        *m |= (value << 6) & c.bits;
                    }
                    if c.cmd2 & CMD2_GBITS != 0 {
                        *m |= (value << 3) & c.bits;
                    }
                    if c.cmd2 & CMD2_OBITS != 0 {
                        *m |= value & c.bits;
                    }
                }
            };
            match c.cmd {
                b'u' => {
                    let v = (m & IRWXU) >> 6;
                    common(&mut m, v)
                }
                b'g' => {
                    let v = (m & IRWXG) >> 3;
                    common(&mut m, v)
                }
                b'o' => {
                    let v = m & IRWXO;
                    common(&mut m, v)
                }
                b'+' => m |= c.bits,
                b'-' => m &= !c.bits,
                // `X`: as BuildKit, decided on the mode before any command.
                _ => {
                    if is_dir || omode & 0o111 != 0 {
                        m |= c.bits;
                    }
                }
            }
        }
        m & 0o7777
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str, mode: u32, dir: bool) -> u32 {
        Chmod::parse(s)
            .unwrap_or_else(|| panic!("{s} should parse"))
            .apply(mode, dir)
    }

    #[test]
    fn octal_and_symbolic() {
        assert_eq!(Chmod::parse("755"), Some(Chmod::Octal(0o755)));
        assert_eq!(Chmod::parse("0644").unwrap().apply(0o777, false), 0o644);
        assert_eq!(sym("u+x,g-r", 0o644, false), 0o704);
        assert_eq!(sym("a=rX", 0o644, false), 0o444);
        assert_eq!(sym("a=rX", 0o755, false), 0o555);
        assert_eq!(sym("a=rX", 0o700, true), 0o555);
        assert_eq!(sym("go-w", 0o777, false), 0o755);
        assert_eq!(sym("+t", 0o777, true), 0o1777);
        assert!(Chmod::parse("u+q").is_none());
        assert!(Chmod::parse("99").is_none());
        assert!(Chmod::parse("").is_none());
        assert!(Chmod::parse("u").is_none());
        assert!(Chmod::parse("u+x,").is_none());
    }

    #[test]
    fn setmode_semantics() {
        // Several operations in one clause, and copying another class's bits.
        assert_eq!(sym("u+x-w", 0o644, false), 0o544);
        assert_eq!(sym("g=u", 0o640, false), 0o660);
        assert_eq!(sym("o=u-w", 0o750, false), 0o755);
        // `=` clears the class's setuid/setgid bit too.
        assert_eq!(sym("u=rwx", 0o4755, false), 0o755);
        assert_eq!(sym("=r", 0o6755, false), 0o444);
        // `t` only with a who that is not just `o`; `u+t` sets sticky.
        assert_eq!(sym("o+t", 0o755, true), 0o755);
        assert_eq!(sym("u+t", 0o755, true), 0o1755);
        // `X` looks at the mode before any change.
        assert_eq!(sym("a-x,a+X", 0o755, false), 0o755);
        assert_eq!(sym("a-x,a+X", 0o644, false), 0o644);
        // `s` for o is ignored.
        assert_eq!(sym("o+s", 0o755, false), 0o755);
        assert_eq!(sym("ug+s", 0o755, false), 0o6755);
    }
}
