//! Instruction flags (`--name[=value]`), checked the way BuildKit's `BFlags` does: each
//! instruction declares what it accepts; unknown, repeated or malformed flags are errors.

use std::collections::BTreeMap;

use super::super::error::{suggest, ErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagType {
    Bool,
    String,
    /// May be repeated; every value kept.
    Strings,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct FlagValue {
    pub value: Option<String>,
    pub values: Vec<String>,
}

/// The flags an instruction accepts, and what was given.
pub(crate) struct Flags<'a> {
    instruction: &'a str,
    defs: Vec<(&'static str, FlagType)>,
    used: BTreeMap<&'static str, FlagValue>,
}

impl<'a> Flags<'a> {
    pub fn new(instruction: &'a str, defs: &[(&'static str, FlagType)]) -> Self {
        Flags {
            instruction,
            defs: defs.to_vec(),
            used: BTreeMap::new(),
        }
    }

    /// Parses the given `--flag` words against the declared flags.
    pub fn parse(mut self, args: &[String]) -> Result<Self, ErrorKind> {
        for a in args {
            if a == "--" {
                break;
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(ErrorKind::FlagSyntax(a.clone()));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(def_name, ty)) = self.defs.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = self.defs.iter().map(|(n, _)| *n).collect();
                return Err(ErrorKind::UnknownFlag {
                    instruction: self.instruction.to_ascii_uppercase(),
                    flag: name.to_string(),
                    suggestion: suggest(name, &names, true).map(|s| format!("--{s}")),
                });
            };
            if self.used.contains_key(def_name) && ty != FlagType::Strings {
                return Err(ErrorKind::DuplicateFlag(name.to_string()));
            }
            let entry = self.used.entry(def_name).or_default();
            match ty {
                FlagType::Bool => {
                    if value == Some("") {
                        return Err(ErrorKind::FlagMissingValue(name.to_string()));
                    }
                    let v = value.unwrap_or("").to_ascii_lowercase();
                    entry.value = Some(match v.as_str() {
                        "true" | "" => "true".to_string(),
                        "false" => "false".to_string(),
                        _ => {
                            return Err(ErrorKind::FlagNotBool {
                                flag: name.to_string(),
                                value: value.unwrap_or("").to_string(),
                            })
                        }
                    });
                }
                FlagType::String => match value {
                    Some(v) => entry.value = Some(v.to_string()),
                    None => return Err(ErrorKind::FlagMissingValue(name.to_string())),
                },
                FlagType::Strings => match value {
                    Some(v) => entry.values.push(v.to_string()),
                    None => return Err(ErrorKind::FlagMissingValue(name.to_string())),
                },
            }
        }
        Ok(self)
    }

    /// The value of a string flag, when given.
    pub fn string(&self, name: &str) -> Option<String> {
        self.used.get(name).and_then(|v| v.value.clone())
    }

    /// Every value of a repeatable flag.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.used
            .get(name)
            .map(|v| v.values.clone())
            .unwrap_or_default()
    }

    /// A boolean flag: `None` when not given.
    pub fn bool_opt(&self, name: &str) -> Option<bool> {
        self.used
            .get(name)
            .and_then(|v| v.value.as_deref())
            .map(|v| v == "true")
    }

    pub fn bool(&self, name: &str) -> bool {
        self.bool_opt(name).unwrap_or(false)
    }

    /// Names of the flags that were given.
    pub fn used(&self) -> Vec<String> {
        self.used.keys().map(|k| k.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFS: &[(&str, FlagType)] = &[
        ("from", FlagType::String),
        ("link", FlagType::Bool),
        ("exclude", FlagType::Strings),
    ];

    fn run(args: &[&str]) -> Result<Flags<'static>, ErrorKind> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Flags::new("copy", DEFS).parse(&args)
    }

    #[test]
    fn accepted_forms() {
        let f = run(&["--from=a", "--link", "--exclude=x", "--exclude=y"]).expect("ok");
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert!(f.bool("link"));
        assert_eq!(f.strings("exclude"), vec!["x".to_string(), "y".to_string()]);
        let f = run(&["--link=FALSE", "--from="]).expect("ok");
        assert_eq!(f.bool_opt("link"), Some(false));
        assert_eq!(f.string("from").as_deref(), Some(""));
    }

    #[test]
    fn rejected_forms() {
        let cases: &[(&[&str], &str)] = &[
            (&["--form=a"], "unknown flag: --form"),
            (
                &["--from=a", "--from=b"],
                "duplicate flag specified: --from",
            ),
            (&["--from"], "missing a value on flag: --from"),
            (&["--link="], "missing a value on flag: --link"),
            (
                &["--link=maybe"],
                "expecting boolean value for flag --link, not: maybe",
            ),
            (&["--exclude"], "missing a value on flag: --exclude"),
        ];
        for (args, msg) in cases {
            let e = run(args).err().map(|e| e.to_string());
            assert_eq!(e.as_deref(), Some(*msg), "{args:?}");
        }
        match run(&["--form=a"]) {
            Err(ErrorKind::UnknownFlag { suggestion, .. }) => {
                assert_eq!(suggestion.as_deref(), Some("--from"))
            }
            _ => panic!("expected unknown flag"),
        }
    }
}
