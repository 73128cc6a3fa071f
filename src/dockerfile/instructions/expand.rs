//! Which instruction values are expanded, and how (the Dockerfile reference's
//! "Environment replacement"; BuildKit's `Expand`/`ExpandRaw` methods and EXPOSE).
//!
//! Expanded with the stage's environment (ENV plus ARGs in scope): ADD and COPY (sources,
//! destination, `--chown`, `--chmod`, ADD's `--checksum`), ENV (keys and values), LABEL
//! (keys and values), EXPOSE (split into words after expansion), USER, VOLUME, WORKDIR,
//! STOPSIGNAL, and RUN's `--mount` values (see [`super::Run::parse_mounts`]). Heredoc
//! bodies of ADD/COPY are expanded without quote processing when their delimiter was not
//! quoted. Not expanded here: FROM (expanded by the planner with the global ARGs only),
//! ARG (its default is expanded by the planner, which knows the build args), `COPY --from`
//! (never), RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK/ONBUILD/MAINTAINER (kept as written; the
//! shell does its own expansion at run time).

use super::super::shell::{EnvLookup, Lex, ShellError};
use super::{Instruction, KeyValue, SourceContent};

fn kv(list: &mut [KeyValue], lex: &Lex, env: &dyn EnvLookup) -> Result<(), ShellError> {
    for item in list {
        item.key = lex.process_word(&item.key, env)?;
        item.value = lex.process_word(&item.value, env)?;
    }
    Ok(())
}

fn opt(v: &mut Option<String>, lex: &Lex, env: &dyn EnvLookup) -> Result<(), ShellError> {
    if let Some(s) = v {
        *s = lex.process_word(s, env)?;
    }
    Ok(())
}

fn all(v: &mut [String], lex: &Lex, env: &dyn EnvLookup) -> Result<(), ShellError> {
    for s in v {
        *s = lex.process_word(s, env)?;
    }
    Ok(())
}

/// Heredoc bodies: BuildKit uses a plain backslash lexer that leaves quotes alone.
fn contents(list: &mut [SourceContent], env: &dyn EnvLookup) -> Result<(), ShellError> {
    let mut lex = Lex::new('\\');
    lex.skip_process_quotes = true;
    for c in list.iter_mut().filter(|c| c.expand) {
        c.data = lex.process_word(&c.data, env)?;
    }
    Ok(())
}

impl Instruction {
    /// Expands variables in place, exactly where BuildKit does (see the module docs).
    /// `lex` must use the Dockerfile's escape character.
    pub fn expand(&mut self, lex: &Lex, env: &dyn EnvLookup) -> Result<(), ShellError> {
        match self {
            Instruction::Env(list) | Instruction::Label(list) => kv(list, lex, env),
            Instruction::Add(a) => {
                opt(&mut a.chown, lex, env)?;
                opt(&mut a.chmod, lex, env)?;
                opt(&mut a.checksum, lex, env)?;
                all(&mut a.sources, lex, env)?;
                a.dest = lex.process_word(&a.dest, env)?;
                contents(&mut a.contents, env)
            }
            Instruction::Copy(c) => {
                opt(&mut c.chown, lex, env)?;
                opt(&mut c.chmod, lex, env)?;
                all(&mut c.sources, lex, env)?;
                c.dest = lex.process_word(&c.dest, env)?;
                contents(&mut c.contents, env)
            }
            Instruction::Expose(ports) => {
                let mut out = Vec::with_capacity(ports.len());
                for p in ports.iter() {
                    out.extend(lex.process_words(p, env)?);
                }
                *ports = out;
                Ok(())
            }
            Instruction::User(s) | Instruction::Workdir(s) | Instruction::StopSignal(s) => {
                *s = lex.process_word(s, env)?;
                Ok(())
            }
            Instruction::Volume(v) => all(v, lex, env),
            Instruction::Run(_)
            | Instruction::Arg(_)
            | Instruction::Healthcheck(_)
            | Instruction::Shell(_)
            | Instruction::Entrypoint(_)
            | Instruction::Cmd(_)
            | Instruction::Onbuild(_)
            | Instruction::Maintainer(_) => Ok(()),
        }
    }
}
