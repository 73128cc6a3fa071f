//! The instruction types.

use super::super::error::ErrorKind;
use super::super::parser::{parse_heredoc, Heredoc};
use super::Mount;

/// `key=value` (ENV, LABEL). `legacy` marks the old `ENV key value` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    pub legacy: bool,
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    pub key: String,
    pub value: Option<String>,
}

/// The command of RUN, CMD, ENTRYPOINT: the exec-form array, or (shell form) the whole
/// text as one element with `prepend_shell` set (the stage's SHELL goes in front).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub args: Vec<String>,
    pub prepend_shell: bool,
}

impl CommandLine {
    /// The shell-form text, when the shell form was used.
    pub fn shell_text(&self) -> Option<&str> {
        if self.prepend_shell {
            self.args.first().map(String::as_str)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub cmd: CommandLine,
    /// Here-documents named on the line, in order (inline files / the script).
    pub heredocs: Vec<Heredoc>,
    /// Raw `--mount` values; parse each with [`Mount::parse`] after expansion.
    pub mounts: Vec<String>,
    pub network: Network,
    pub security: Security,
    /// Raw `--device` values.
    pub devices: Vec<String>,
    /// Names of the flags given.
    pub flags_used: Vec<String>,
}

/// What RUN executes once its heredocs are resolved (BuildKit's `dispatchRun`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunScript {
    /// Run these arguments (put the stage's SHELL in front when `prepend_shell`).
    Args(Vec<String>),
    /// A lone heredoc starting with `#!`: write `data` as `/dev/pipes/<name>` (mode 0755,
    /// in a read-only mount) and run that path (through the SHELL when `prepend_shell`).
    ShebangFile { name: String, data: String },
}

impl Run {
    /// Resolves heredocs: a lone `<<EOF` becomes its body as the shell command (or a
    /// script file when it starts with `#!`); otherwise the bodies are appended to the
    /// command line for the shell to read, as written.
    pub fn script(&self) -> Result<RunScript, ErrorKind> {
        let args = &self.cmd.args;
        let Some(first) = self.heredocs.first() else {
            return Ok(RunScript::Args(args.clone()));
        };
        if args.len() != 1 || !self.cmd.prepend_shell {
            return Err(ErrorKind::Invalid(format!(
                "parsing produced an invalid run command: {args:?}"
            )));
        }
        if matches!(parse_heredoc(&args[0]), Ok(Some(_))) {
            let data = first.chomped();
            if data.starts_with("#!") {
                return Ok(RunScript::ShebangFile {
                    name: first.name.clone(),
                    data,
                });
            }
            return Ok(RunScript::Args(vec![data]));
        }
        let mut text = args[0].clone();
        for h in &self.heredocs {
            text.push('\n');
            text.push_str(&h.content);
            text.push_str(&h.name);
        }
        Ok(RunScript::Args(vec![text]))
    }

    /// Parses the `--mount` specs, expanding each value with `expand`.
    pub fn parse_mounts(
        &self,
        expand: &mut dyn FnMut(&str) -> Result<String, ErrorKind>,
    ) -> Result<Vec<Mount>, ErrorKind> {
        self.mounts
            .iter()
            .map(|m| Mount::parse(m, expand))
            .collect()
    }
}

/// A COPY/ADD source given inline as a heredoc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContent {
    /// The heredoc's name (the file name it gets).
    pub path: String,
    /// The body (leading tabs already removed for `<<-`).
    pub data: String,
    /// Variables in `data` are expanded (the delimiter was not quoted).
    pub expand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub sources: Vec<String>,
    pub contents: Vec<SourceContent>,
    pub dest: String,
    /// `--from=` (stage name, index, image or named context); never expanded.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub sources: Vec<String>,
    pub contents: Vec<SourceContent>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub exclude: Vec<String>,
    pub keep_git_dir: Option<bool>,
    pub checksum: Option<String>,
    pub unpack: Option<bool>,
}

/// HEALTHCHECK settings; durations in nanoseconds (0 = inherit the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// `["CMD", args...]` (exec form) or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE` (the image config gets `Test: ["NONE"]`).
    None,
    Check(HealthConfig),
}

/// `ONBUILD <instruction>`: the trigger text stored in the image config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The instruction after ONBUILD, heredoc bodies appended as BuildKit stores them.
    pub expression: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Run(Run),
    Copy(Copy),
    Add(Add),
    Env(Vec<KeyValue>),
    Arg(Vec<ArgDef>),
    Label(Vec<KeyValue>),
    /// Ports as written (sorted as text, like BuildKit); expand with [`Instruction::expand`].
    Expose(Vec<String>),
    User(String),
    Workdir(String),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
    Entrypoint(CommandLine),
    Cmd(CommandLine),
    Onbuild(Onbuild),
    Maintainer(String),
}

/// An instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub instruction: Instruction,
    /// The keyword as written (`copy`, `COPY`...).
    pub keyword: String,
    /// The logical line, trimmed (continuations joined).
    pub original: String,
    pub start_line: usize,
    pub end_line: usize,
    /// Comment lines directly above.
    pub comments: Vec<String>,
}
