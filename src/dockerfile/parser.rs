//! The line-level Dockerfile parser (BuildKit's `parser.Parse`): physical lines become
//! logical instructions ([`Node`]) with their original line range. Handles the BOM,
//! parser directives, the escape character, line continuations (with comments and
//! empty lines inside), JSON vs shell form, builder flags, and heredoc bodies.

pub(crate) mod args;
mod directives;

use directives::DirectiveParser;
pub use directives::{detect_syntax, SyntaxDirective};

use super::error::{DockerfileError, ErrorKind};
use super::shell::{Lex, NoEnv};

/// Parser directives found at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=` (the frontend image; kiln only records it).
    pub syntax: Option<String>,
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# check=` (lint configuration; recorded, not applied).
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A here-document attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (`EOF` for `<<"EOF"`).
    pub name: String,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 when absent.
    pub fd: u32,
    /// False when any part of the delimiter was quoted: the body is not expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body (see [`Heredoc::chomped`]).
    pub chomp: bool,
    /// The body as written, each line with its newline; the terminator excluded.
    pub content: String,
}

impl Heredoc {
    /// The body with leading tabs removed from every line when `chomp` is set.
    pub fn chomped(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        chomp_content(&self.content)
    }
}

/// Removes leading tabs from every line (`<<-`).
pub fn chomp_content(s: &str) -> String {
    s.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// One logical instruction as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction keyword as written (case kept).
    pub cmd: String,
    /// `--name[=value]` words before the arguments, quotes removed.
    pub flags: Vec<String>,
    /// Arguments, unexpanded. ENV/LABEL give `[key, value, sep]` triples; HEALTHCHECK
    /// gives the type first; ONBUILD gives the inner keyword and its arguments.
    pub args: Vec<String>,
    /// Exec form (a JSON array) was used.
    pub json: bool,
    /// The inner instruction of ONBUILD.
    pub sub: Option<Box<Node>>,
    pub heredocs: Vec<Heredoc>,
    /// The logical line (continuations joined, comments inside removed).
    pub original: String,
    /// 1-based first and last physical line (heredoc bodies included).
    pub start_line: usize,
    pub end_line: usize,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

/// A non-fatal finding (BuildKit prints these as warnings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub message: String,
    pub line: usize,
}

/// The parsed file: instructions in order plus what the directives said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    pub nodes: Vec<Node>,
    pub directives: Directives,
    pub warnings: Vec<Warning>,
}

/// BuildKit's scanner limit for one physical line, newline included.
const MAX_LINE: usize = 64 * 1024;

const HEREDOC_COMMANDS: &[&str] = &["add", "copy", "run"];

impl Node {
    fn can_contain_heredoc(&self) -> bool {
        let node = match (&self.sub, self.cmd.eq_ignore_ascii_case("onbuild")) {
            (Some(sub), true) => sub.as_ref(),
            _ => self,
        };
        HEREDOC_COMMANDS.contains(&node.cmd.to_ascii_lowercase().as_str()) && !node.json
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// Removes a trailing escape (line continuation): the escape, then only blanks, not
/// itself escaped. Returns the line and whether the logical line ends here.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    let Some(stripped) = t.strip_suffix(escape) else {
        return (line.to_string(), true);
    };
    if stripped.is_empty() || !stripped.ends_with(escape) {
        return (stripped.to_string(), false);
    }
    (line.to_string(), true)
}

/// Matches `^(\d*)<<(-?)\s*([^<]*)$` and reads the delimiter word.
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start_matches([' ', '\t', '\n', '\r', '\u{0c}']);
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    let fd = word[..digits].parse::<u32>().unwrap_or(0);
    let mut lex = Lex::new('\\');
    lex.skip_unset_env = true;
    let words = lex.process_words(rest, &NoEnv).map_err(|e| e.to_string())?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &NoEnv).map_err(|e| e.to_string())?;
    if raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let name = words[0].clone();
    Ok(Some(Heredoc {
        expand: quotes(&name) == quotes(&raw[0]),
        name,
        fd,
        chomp,
        content: String::new(),
    }))
}

/// The heredocs named on a logical line, in order.
fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let mut lex = Lex::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let words = lex.process_words(line, &NoEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc(&w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

/// Builds the node for one logical line (no line numbers yet).
fn node_from_line(line: &str, escape: char, comments: Vec<String>) -> Result<Node, ErrorKind> {
    let (cmd, flags, rest) = args::split_command(line, escape);
    let lower = cmd.to_ascii_lowercase();
    let mut sub = None;
    let parsed = match lower.as_str() {
        "add" | "copy" | "volume" => args::maybe_json_to_list(&rest)?,
        "arg" => args::Args {
            values: args::parse_words(&rest, escape),
            json: false,
        },
        "cmd" | "entrypoint" | "run" | "shell" => args::maybe_json(&rest)?,
        "env" => args::name_val(&rest, "ENV", escape)?,
        "label" => args::name_val(&rest, "LABEL", escape)?,
        "expose" | "from" => args::whitespace_delimited(&rest),
        "healthcheck" => args::health_config(&rest)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => args::Args {
            values: if rest.is_empty() {
                vec![]
            } else {
                vec![rest.clone()]
            },
            json: false,
        },
        "onbuild" => {
            if rest.is_empty() {
                args::Args::default()
            } else {
                let child = node_from_line(&rest, escape, Vec::new())?;
                let mut values = vec![child.cmd.clone()];
                values.extend(child.args.iter().cloned());
                sub = Some(Box::new(child));
                args::Args {
                    values,
                    json: false,
                }
            }
        }
        _ => args::Args::default(),
    };
    Ok(Node {
        cmd,
        flags,
        args: parsed.values,
        json: parsed.json,
        sub,
        heredocs: Vec::new(),
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
        comments,
    })
}

/// Parses a whole Dockerfile into logical instructions.
pub fn parse(source: &str) -> Result<Ast, DockerfileError> {
    parse_inner(source).map_err(|e| e.locate(source))
}

fn parse_inner(source: &str) -> Result<Ast, DockerfileError> {
    let mut lines: Vec<&str> = source.split_inclusive('\n').collect();
    // BuildKit reads lines with a 64 KiB buffer: a longer line ends the file there, and
    // is an error once the lines before it parsed.
    let too_long = lines
        .iter()
        .position(|l| l.len() > MAX_LINE || (!l.ends_with('\n') && l.len() >= MAX_LINE));
    if let Some(idx) = too_long {
        lines.truncate(idx);
    }
    let mut directives = Directives::default();
    let mut dp = DirectiveParser::default();
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut i = 0usize;
    let mut current = 0usize;
    let err = |kind: ErrorKind, start: usize, end: usize| DockerfileError::new(kind, start, end);

    // Runs a line through the directive parser; strips comments.
    let process = |dp: &mut DirectiveParser,
                   directives: &mut Directives,
                   raw: &str,
                   strip_left: bool|
     -> Result<(String, bool), ErrorKind> {
        let mut t = trim_newline(raw);
        if strip_left {
            t = t.trim_start();
        }
        let mut ok = false;
        if let Some((name, value)) = dp.parse_line(t).map_err(ErrorKind::Directive)? {
            ok = true;
            match name.as_str() {
                "escape" => {
                    if value != "`" && value != "\\" {
                        return Err(ErrorKind::Directive(format!(
                            "invalid escape token '{value}' does not match ` or \\"
                        )));
                    }
                    directives.escape = value.chars().next().unwrap_or('\\');
                }
                "syntax" => directives.syntax = Some(value),
                _ => {
                    directives::check_options(&value).map_err(|e| {
                        ErrorKind::Directive(format!("failed to parse check options: {e}"))
                    })?;
                    directives.check = Some(value)
                }
            }
        }
        let out = if is_comment(t) {
            String::new()
        } else {
            t.to_string()
        };
        Ok((out, ok))
    };

    while i < lines.len() {
        let mut raw = lines[i];
        i += 1;
        if current == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        if is_comment(raw) {
            let c = raw.get(1..).unwrap_or("").trim();
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c.to_string());
            }
        }
        let (text, directive) = process(&mut dp, &mut directives, raw, true)
            .map_err(|k| err(k, current + 1, current + 1))?;
        if directive {
            comments.pop();
        }
        current += 1;
        let start = current;
        let escape = directives.escape;
        let (first, mut eol) = trim_continuation(&text, escape);
        if eol && first.is_empty() {
            continue;
        }
        let mut buf = first;
        let mut empty_continuation = false;
        while !eol && i < lines.len() {
            let raw = lines[i];
            i += 1;
            let (text, _) = process(&mut dp, &mut directives, raw, false)
                .map_err(|k| err(k, current + 1, current + 1))?;
            current += 1;
            if is_comment(raw) {
                continue;
            }
            if text.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (t, e) = trim_continuation(&text, escape);
            eol = e;
            buf.push_str(&t);
        }
        if empty_continuation {
            warnings.push(Warning {
                message: format!("Empty continuation line found in: {buf}"),
                line: current,
            });
        }
        let mut node =
            node_from_line(&buf, escape, std::mem::take(&mut comments)).map_err(|k| {
                let mut e = err(k, start, current);
                e.instruction = Some(buf.clone());
                e
            })?;
        if node.can_contain_heredoc() && buf.contains("<<") {
            let docs =
                heredocs_from_line(&buf).map_err(|m| err(ErrorKind::Invalid(m), start, current))?;
            for mut doc in docs {
                let mut terminated = false;
                let mut content = String::new();
                while i < lines.len() {
                    let body = lines[i];
                    i += 1;
                    current += 1;
                    let mut candidate = trim_newline(body);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(body);
                }
                if !terminated {
                    let mut e = err(
                        ErrorKind::UnterminatedHeredoc {
                            name: doc.name.clone(),
                        },
                        start,
                        current,
                    );
                    e.instruction = Some(buf.clone());
                    return Err(e);
                }
                doc.content = content;
                node.heredocs.push(doc);
            }
        }
        node.start_line = start;
        node.end_line = current;
        nodes.push(node);
        comments.clear();
    }
    if nodes.is_empty() {
        return Err(err(
            ErrorKind::NoInstructions,
            current.max(1),
            current.max(1),
        ));
    }
    if too_long.is_some() {
        let msg = format!(
            "dockerfile line greater than max allowed size of {}",
            MAX_LINE - 1
        );
        return Err(err(ErrorKind::Invalid(msg), current + 1, current + 1));
    }
    Ok(Ast {
        nodes,
        directives,
        warnings,
    })
}

#[cfg(test)]
mod tests;
