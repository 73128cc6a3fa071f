//! Grouping instructions into stages: ARGs before the first FROM are global ("meta")
//! ARGs; every FROM starts a [`Stage`].

use std::path::{Path, PathBuf};

use super::super::error::{DockerfileError, ErrorKind, Phase};
use super::super::parser::{self, Directives, Node, Warning};
use super::super::shell::{Lex, NoEnv};
use super::{parse_node, Command, Instruction, Parsed};

/// One build stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// The base as written (`$BASE`, `scratch`, another stage's name...), unexpanded.
    pub base: String,
    /// `--platform=` as written, unexpanded.
    pub platform: Option<String>,
    /// The FROM line, trimmed.
    pub original: String,
    pub start_line: usize,
    pub end_line: usize,
    pub comments: Vec<String>,
    pub commands: Vec<Command>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub file: PathBuf,
    pub directives: Directives,
    /// ARG instructions before the first FROM (each an [`Instruction::Arg`]).
    pub meta_args: Vec<Command>,
    pub stages: Vec<Stage>,
    pub warnings: Vec<Warning>,
    /// The text that was parsed (for error snippets).
    pub source: String,
}

/// Kept for readers looking for it: a global ARG is a [`Command`] holding an
/// [`Instruction::Arg`].
pub type MetaArg = Command;

impl Dockerfile {
    /// The escape character chosen by `# escape=` (default `\`).
    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// A lexer for expanding this file's words.
    pub fn lex(&self) -> Lex {
        Lex::new(self.directives.escape)
    }

    /// An error found while building (expansion, mounts...) at lines `start..=end` of
    /// this file, with the snippet filled in.
    pub fn error_at(&self, kind: ErrorKind, start: usize, end: usize) -> DockerfileError {
        let mut e = DockerfileError::new(kind, start, end).locate(&self.source);
        e.phase = Phase::Build;
        e.with_file(self.file.clone())
    }

    /// [`Dockerfile::error_at`] for a command.
    pub fn command_error(&self, kind: ErrorKind, command: &Command) -> DockerfileError {
        let mut e = self.error_at(kind, command.start_line, command.end_line);
        e.instruction = Some(command.original.clone());
        e
    }

    /// The index of the stage named `name` (case-insensitive).
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }
}

fn to_command(node: &Node, instruction: Instruction) -> Command {
    Command {
        instruction,
        keyword: node.cmd.clone(),
        original: node.original.trim().to_string(),
        start_line: node.start_line,
        end_line: node.end_line,
        comments: node.comments.clone(),
    }
}

/// BuildKit refuses `COPY --from` values that expansion would change.
fn check_copy_from(instruction: &Instruction, escape: char) -> Result<(), ErrorKind> {
    if let Instruction::Copy(c) = instruction {
        if let Some(from) = &c.from {
            let expanded = Lex::new(escape).process_word(from, &NoEnv)?;
            if &expanded != from {
                return Err(ErrorKind::Invalid(
                    "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
                        .into(),
                ));
            }
        }
    }
    Ok(())
}

fn node_error(kind: ErrorKind, node: &Node, source: &str, file: &Path) -> DockerfileError {
    let mut e = DockerfileError::new(kind, node.start_line, node.end_line).locate(source);
    e.instruction = Some(node.original.trim().to_string());
    e.with_file(file)
}

/// Parses a Dockerfile into stages. `file` is only used in error locations.
pub fn parse_dockerfile(
    source: &str,
    file: impl Into<PathBuf>,
) -> Result<Dockerfile, DockerfileError> {
    let file = file.into();
    let ast = parser::parse(source).map_err(|e| e.with_file(file.clone()))?;
    let escape = ast.directives.escape;
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &ast.nodes {
        let parsed = parse_node(node).map_err(|k| node_error(k, node, source, &file))?;
        match parsed {
            Parsed::From(f) => stages.push(Stage {
                name: f.name,
                base: f.base,
                platform: f.platform,
                original: node.original.trim().to_string(),
                start_line: node.start_line,
                end_line: node.end_line,
                comments: node.comments.clone(),
                commands: Vec::new(),
            }),
            Parsed::Command(i) => {
                if stages.is_empty() && matches!(i, Instruction::Arg(_)) {
                    meta_args.push(to_command(node, i));
                    continue;
                }
                let Some(stage) = stages.last_mut() else {
                    return Err(node_error(ErrorKind::NoStage, node, source, &file));
                };
                stage.commands.push(to_command(node, i));
            }
        }
    }
    for stage in &stages {
        for c in &stage.commands {
            check_copy_from(&c.instruction, escape).map_err(|k| {
                let mut e = DockerfileError::new(k, c.start_line, c.end_line).locate(source);
                e.instruction = Some(c.original.clone());
                e.with_file(file.clone())
            })?;
        }
    }
    Ok(Dockerfile {
        file,
        directives: ast.directives,
        meta_args,
        stages,
        warnings: ast.warnings,
        source: source.to_string(),
    })
}

/// Parses an ONBUILD trigger taken from a base image's config (one instruction, the
/// default escape character), as BuildKit does when a stage builds on that image.
pub fn parse_onbuild_trigger(expression: &str) -> Result<Command, DockerfileError> {
    let ast = parser::parse(expression)?;
    let [node] = ast.nodes.as_slice() else {
        return Err(DockerfileError::new(
            ErrorKind::Invalid("onbuild trigger should be a single expression".into()),
            1,
            1,
        ));
    };
    let err = |k| DockerfileError::new(k, node.start_line, node.end_line).locate(expression);
    match parse_node(node).map_err(err)? {
        Parsed::Command(i) => {
            check_copy_from(&i, ast.directives.escape).map_err(err)?;
            Ok(to_command(node, i))
        }
        Parsed::From(_) => Err(err(ErrorKind::Invalid(
            "FROM isn't allowed as an ONBUILD trigger".into(),
        ))),
    }
}
