//! Typed instructions (BuildKit's `instructions` package): each parsed [`Node`] becomes
//! an [`Instruction`] after its flags and arguments are checked. Values stay unexpanded;
//! [`Instruction::expand`] applies the Dockerfile's variable rules at build time.

mod duration;
mod expand;
mod flags;
pub mod mount;
mod stage;
mod types;

pub use mount::{Mount, MountType, Sharing};
pub use stage::{parse_dockerfile, parse_onbuild_trigger, Dockerfile, MetaArg, Stage};
pub use types::{
    Add, ArgDef, Command, CommandLine, Copy, HealthConfig, Healthcheck, Instruction, KeyValue,
    Network, Onbuild, Run, RunScript, Security, SourceContent,
};

use self::flags::{FlagType, Flags};
use super::error::{suggest, ErrorKind};
use super::parser::{chomp_content, parse_heredoc, Node};

/// Every instruction keyword, upper case.
pub const INSTRUCTION_NAMES: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// `FROM [--platform=p] image [AS name]`, before grouping into a [`Stage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FromInstr {
    pub base: String,
    pub name: Option<String>,
    pub platform: Option<String>,
}

pub(crate) enum Parsed {
    From(FromInstr),
    Command(Instruction),
}

fn args_err(msg: String) -> ErrorKind {
    ErrorKind::Arguments(msg)
}

fn at_least_one(cmd: &str) -> ErrorKind {
    args_err(format!("{cmd} requires at least one argument"))
}

fn exactly_one(cmd: &str) -> ErrorKind {
    args_err(format!("{cmd} requires exactly one argument"))
}

fn kvps(args: &[String], cmd: &str) -> Result<Vec<KeyValue>, ErrorKind> {
    if args.is_empty() {
        return Err(at_least_one(cmd));
    }
    if args.len() % 3 != 0 {
        return Err(args_err(format!("Bad input to {cmd}, too many arguments")));
    }
    args.chunks(3)
        .map(|c| {
            if c[0].is_empty() {
                return Err(args_err(format!("{cmd} names can not be blank")));
            }
            Ok(KeyValue {
                key: c[0].clone(),
                value: c[1].clone(),
                legacy: c[2].is_empty(),
            })
        })
        .collect()
}

fn command_line(node: &Node) -> Vec<String> {
    if node.args.is_empty() {
        return Vec::new();
    }
    if node.json {
        return node.args.clone();
    }
    vec![node.args.join(" ")]
}

type SourcesAndDest = (Vec<String>, Vec<SourceContent>, String);

fn sources_and_dest(node: &Node, cmd: &str) -> Result<SourcesAndDest, ErrorKind> {
    let (dest, srcs) = match node.args.split_last() {
        Some((d, s)) => (d.clone(), s),
        None => return Err(no_destination(cmd)),
    };
    if matches!(parse_heredoc(&dest), Ok(Some(_))) {
        return Err(args_err(format!(
            "{cmd} cannot accept a heredoc as a destination"
        )));
    }
    let mut sources = Vec::new();
    let mut contents = Vec::new();
    for src in srcs {
        match parse_heredoc(src) {
            Ok(Some(h)) => {
                let body = node
                    .heredocs
                    .iter()
                    .rev()
                    .find(|d| d.name == h.name)
                    .map(|d| d.content.clone())
                    .unwrap_or_default();
                contents.push(SourceContent {
                    data: if h.chomp { chomp_content(&body) } else { body },
                    path: h.name,
                    expand: h.expand,
                });
            }
            _ => sources.push(src.clone()),
        }
    }
    Ok((sources, contents, dest))
}

fn no_destination(cmd: &str) -> ErrorKind {
    args_err(format!(
        "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
    ))
}

fn duration_flag(f: &Flags, name: &str) -> Result<i64, ErrorKind> {
    let Some(s) = f.string(name).filter(|s| !s.is_empty()) else {
        return Ok(0);
    };
    let d = duration::parse_go_duration(&s)
        .ok_or_else(|| ErrorKind::Invalid(format!("time: invalid duration {s:?}")))?;
    if d == 0 {
        return Ok(0);
    }
    if d < 1_000_000 {
        return Err(ErrorKind::Invalid(format!(
            "Interval {name:?} cannot be less than 1ms"
        )));
    }
    Ok(d)
}

fn parse_healthcheck(node: &Node) -> Result<Healthcheck, ErrorKind> {
    let Some((typ, rest)) = node.args.split_first() else {
        return Err(at_least_one("HEALTHCHECK"));
    };
    let typ = typ.to_uppercase();
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err(args_err("HEALTHCHECK NONE takes no arguments".into()));
        }
        return Ok(Healthcheck::None);
    }
    let f = Flags::new(
        "healthcheck",
        &[
            ("interval", FlagType::String),
            ("timeout", FlagType::String),
            ("start-period", FlagType::String),
            ("start-interval", FlagType::String),
            ("retries", FlagType::String),
        ],
    )
    .parse(&node.flags)?;
    if typ != "CMD" {
        return Err(ErrorKind::Invalid(format!(
            "Unknown type {typ:?} in HEALTHCHECK (try CMD)"
        )));
    }
    let cmd: Vec<String> = if rest.is_empty() {
        Vec::new()
    } else if node.json {
        rest.to_vec()
    } else {
        vec![rest.join(" ")]
    };
    if cmd.is_empty() {
        return Err(args_err("Missing command after HEALTHCHECK CMD".into()));
    }
    let mut test = vec![if node.json {
        "CMD".to_string()
    } else {
        "CMD-SHELL".to_string()
    }];
    test.extend(cmd);
    let retries = match f.string("retries").filter(|s| !s.is_empty()) {
        None => 0,
        Some(r) => {
            let n: i32 = r.parse().map_err(|_| {
                ErrorKind::Invalid(format!("strconv.ParseInt: parsing {r:?}: invalid syntax"))
            })?;
            if n < 0 {
                return Err(ErrorKind::Invalid(format!(
                    "--retries cannot be negative ({n})"
                )));
            }
            n
        }
    };
    Ok(Healthcheck::Check(HealthConfig {
        test,
        interval: duration_flag(&f, "interval")?,
        timeout: duration_flag(&f, "timeout")?,
        start_period: duration_flag(&f, "start-period")?,
        start_interval: duration_flag(&f, "start-interval")?,
        retries,
    }))
}

fn parse_run(node: &Node) -> Result<Run, ErrorKind> {
    let f = Flags::new(
        "run",
        &[
            ("mount", FlagType::Strings),
            ("network", FlagType::String),
            ("security", FlagType::String),
            ("device", FlagType::Strings),
        ],
    )
    .parse(&node.flags)?;
    let mounts = f.strings("mount");
    for m in &mounts {
        Mount::check_unexpanded(m)?;
    }
    let network = match f.string("network").as_deref().unwrap_or("default") {
        "default" => Network::Default,
        "none" => Network::None,
        "host" => Network::Host,
        other => {
            return Err(ErrorKind::Invalid(format!(
                "invalid network mode {other:?}"
            )))
        }
    };
    let security = match f.string("security").as_deref().unwrap_or("sandbox") {
        "sandbox" => Security::Sandbox,
        "insecure" => Security::Insecure,
        other => {
            return Err(ErrorKind::Invalid(format!(
                "security {other:?} is not valid"
            )))
        }
    };
    Ok(Run {
        cmd: CommandLine {
            args: command_line(node),
            prepend_shell: !node.json,
        },
        heredocs: node.heredocs.clone(),
        mounts,
        network,
        security,
        devices: f.strings("device"),
        flags_used: f.used(),
    })
}

fn no_flags<'a>(node: &Node, name: &'a str) -> Result<Flags<'a>, ErrorKind> {
    Flags::new(name, &[]).parse(&node.flags)
}

fn parse_from(node: &Node) -> Result<FromInstr, ErrorKind> {
    let a = &node.args;
    let name = match a.len() {
        3 if a[1].eq_ignore_ascii_case("as") => {
            let n = a[2].to_lowercase();
            let mut chars = n.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
                });
            if !valid {
                return Err(ErrorKind::Invalid(format!(
                    "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                    a[2]
                )));
            }
            Some(n)
        }
        1 => None,
        _ => {
            return Err(args_err(
                "FROM requires either one or three arguments".into(),
            ))
        }
    };
    let f = Flags::new("from", &[("platform", FlagType::String)]).parse(&node.flags)?;
    Ok(FromInstr {
        base: a[0].clone(),
        name,
        platform: f.string("platform").filter(|p| !p.is_empty()),
    })
}

fn parse_onbuild(node: &Node) -> Result<Onbuild, ErrorKind> {
    let Some(first) = node.args.first() else {
        return Err(at_least_one("ONBUILD"));
    };
    no_flags(node, "onbuild")?;
    let trigger = first.trim().to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => {
            return Err(ErrorKind::Invalid(
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into(),
            ))
        }
        "MAINTAINER" | "FROM" => {
            return Err(ErrorKind::Invalid(format!(
                "{trigger} isn't allowed as an ONBUILD trigger"
            )))
        }
        _ => {}
    }
    let orig = node.original.trim_start();
    let mut expression = match orig.get(..7) {
        Some(k) if k.eq_ignore_ascii_case("onbuild") => orig[7..].trim_start().to_string(),
        _ => orig.to_string(),
    };
    for h in &node.heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(Onbuild { expression })
}

/// Turns one parsed node into a typed instruction (or a FROM).
pub(crate) fn parse_node(node: &Node) -> Result<Parsed, ErrorKind> {
    let cmd = node.cmd.to_ascii_lowercase();
    let a = &node.args;
    let i = match cmd.as_str() {
        "from" => return parse_from(node).map(Parsed::From),
        "env" => {
            no_flags(node, "env")?;
            Instruction::Env(kvps(a, "ENV")?)
        }
        "maintainer" => {
            if a.len() != 1 {
                return Err(exactly_one("MAINTAINER"));
            }
            no_flags(node, "maintainer")?;
            Instruction::Maintainer(a[0].clone())
        }
        "label" => {
            no_flags(node, "label")?;
            Instruction::Label(kvps(a, "LABEL")?)
        }
        "add" => {
            if a.len() < 2 {
                return Err(no_destination("ADD"));
            }
            let f = Flags::new(
                "add",
                &[
                    ("chown", FlagType::String),
                    ("chmod", FlagType::String),
                    ("link", FlagType::Bool),
                    ("keep-git-dir", FlagType::Bool),
                    ("checksum", FlagType::String),
                    ("unpack", FlagType::Bool),
                    ("exclude", FlagType::Strings),
                ],
            )
            .parse(&node.flags)?;
            let (sources, contents, dest) = sources_and_dest(node, "ADD")?;
            Instruction::Add(Add {
                sources,
                contents,
                dest,
                chown: f.string("chown"),
                chmod: f.string("chmod"),
                link: f.bool("link"),
                exclude: f.strings("exclude"),
                keep_git_dir: f.bool_opt("keep-git-dir"),
                checksum: f.string("checksum"),
                unpack: f.bool_opt("unpack"),
            })
        }
        "copy" => {
            if a.len() < 2 {
                return Err(no_destination("COPY"));
            }
            let f = Flags::new(
                "copy",
                &[
                    ("chown", FlagType::String),
                    ("from", FlagType::String),
                    ("chmod", FlagType::String),
                    ("link", FlagType::Bool),
                    ("exclude", FlagType::Strings),
                    ("parents", FlagType::Bool),
                ],
            )
            .parse(&node.flags)?;
            let (sources, contents, dest) = sources_and_dest(node, "COPY")?;
            Instruction::Copy(Copy {
                sources,
                contents,
                dest,
                from: f.string("from").filter(|s| !s.is_empty()),
                chown: f.string("chown"),
                chmod: f.string("chmod"),
                link: f.bool("link"),
                parents: f.bool("parents"),
                exclude: f.strings("exclude"),
            })
        }
        "onbuild" => Instruction::Onbuild(parse_onbuild(node)?),
        "workdir" => {
            if a.len() != 1 {
                return Err(exactly_one("WORKDIR"));
            }
            no_flags(node, "workdir")?;
            Instruction::Workdir(a[0].clone())
        }
        "run" => Instruction::Run(parse_run(node)?),
        "cmd" => {
            no_flags(node, "cmd")?;
            Instruction::Cmd(CommandLine {
                args: command_line(node),
                prepend_shell: !node.json,
            })
        }
        "entrypoint" => {
            no_flags(node, "entrypoint")?;
            Instruction::Entrypoint(CommandLine {
                args: command_line(node),
                prepend_shell: !node.json,
            })
        }
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(node)?),
        "expose" => {
            if a.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            no_flags(node, "expose")?;
            let mut ports = a.clone();
            ports.sort();
            Instruction::Expose(ports)
        }
        "user" => {
            if a.len() != 1 {
                return Err(exactly_one("USER"));
            }
            no_flags(node, "user")?;
            Instruction::User(a[0].clone())
        }
        "volume" => {
            if a.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            no_flags(node, "volume")?;
            let mut vols = Vec::with_capacity(a.len());
            for v in a {
                let v = v.trim();
                if v.is_empty() {
                    return Err(ErrorKind::Invalid(
                        "VOLUME specified can not be an empty string".into(),
                    ));
                }
                vols.push(v.to_string());
            }
            Instruction::Volume(vols)
        }
        "stopsignal" => {
            if a.len() != 1 {
                return Err(exactly_one("STOPSIGNAL"));
            }
            Instruction::StopSignal(a[0].clone())
        }
        "arg" => {
            if a.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let mut defs = Vec::with_capacity(a.len());
            for w in a {
                defs.push(match w.split_once('=') {
                    Some(("", _)) => return Err(args_err("ARG names can not be blank".into())),
                    Some((k, v)) => ArgDef {
                        key: k.to_string(),
                        value: Some(v.to_string()),
                    },
                    None => ArgDef {
                        key: w.clone(),
                        value: None,
                    },
                });
            }
            Instruction::Arg(defs)
        }
        "shell" => {
            no_flags(node, "shell")?;
            let s = command_line(node);
            if s.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !node.json {
                return Err(args_err(
                    "SHELL requires the arguments to be in JSON form".into(),
                ));
            }
            Instruction::Shell(s)
        }
        _ => {
            return Err(ErrorKind::UnknownInstruction {
                name: node.cmd.clone(),
                suggestion: suggest(&node.cmd, INSTRUCTION_NAMES, false),
            })
        }
    };
    Ok(Parsed::Command(i))
}

#[cfg(test)]
mod tests;
