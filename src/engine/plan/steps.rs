//! The layer-producing instructions: WORKDIR, RUN, COPY and ADD become [`Step`]s with
//! their history entry and cache key.

use crate::dockerfile::instructions::{
    Add, Command, Copy, MountType, Run, RunScript, SourceContent,
};
use crate::dockerfile::ErrorKind;
use crate::oci::Reference;

use super::dispatch::Dispatcher;
use super::graph::stage_ref;
use super::types::{CopySource, CopyStep, NamedContext, RunMount, RunStep, Step, StepKind};
use super::PlanError;
use crate::engine::config;

type Fields = Vec<(String, String)>;

fn field(f: &mut Fields, name: &str, value: impl Into<String>) {
    f.push((name.to_string(), value.into()));
}

fn list(f: &mut Fields, name: &str, items: &[String]) {
    field(f, &format!("{name}.len"), items.len().to_string());
    for i in items {
        field(f, name, i.clone());
    }
}

fn opt(f: &mut Fields, name: &str, v: &Option<String>) {
    match v {
        Some(v) => field(f, &format!("{name}.some"), v.clone()),
        None => field(f, &format!("{name}.none"), ""),
    }
}

/// BuildKit's `runCommandString`: `|N K=V ... args` when ARGs are in scope.
fn run_command_string(args: &[String], d: &Dispatcher) -> String {
    let mut build_env: Vec<(String, String)> = Vec::new();
    for (k, v) in &d.state.build_args {
        let val = d
            .state
            .get_env(k)
            .map(str::to_string)
            .unwrap_or_else(|| v.clone().unwrap_or_default());
        match build_env.iter_mut().find(|(key, _)| key == k) {
            Some(e) => e.1 = val,
            None => build_env.push((k.clone(), val)),
        }
    }
    let mut parts: Vec<String> = Vec::new();
    if !build_env.is_empty() {
        parts.push(format!("|{}", build_env.len()));
        parts.extend(build_env.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    parts.extend(args.iter().cloned());
    parts.join(" ")
}

fn is_http(src: &str) -> bool {
    (src.starts_with("http://") || src.starts_with("https://")) && !is_git(src)
}

fn is_git(src: &str) -> bool {
    crate::engine::copy::git::is_git(src)
}

/// `--chmod`: an octal mode up to 07777 or a symbolic one (`u+x,go=r`).
fn check_chmod(mode: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "invalid chmod parameter: '{mode}'. it should be octal string and between 0 and 07777"
        )
    };
    if !mode.is_empty() && mode.chars().all(|c| c.is_ascii_digit()) {
        return match u32::from_str_radix(mode, 8) {
            Ok(v) if v <= 0o7777 => Ok(()),
            _ => Err(bad()),
        };
    }
    if crate::engine::copy::Chmod::parse(mode).is_some() {
        Ok(())
    } else {
        Err(format!("invalid chmod parameter: '{mode}'"))
    }
}

impl Dispatcher<'_, '_> {
    /// Records a step: its key on top of the current one, its history entry.
    fn push_step(
        &mut self,
        kind: StepKind,
        cmd: &Command,
        created_by: String,
        fields: Fields,
        on_build: bool,
    ) {
        let tmp = Step {
            kind,
            line: cmd.start_line,
            created_by,
            cache_key_base: String::new(),
            key_fields: fields,
            on_build,
        };
        let mut step = tmp;
        step.cache_key_base = step.key_with_parent(&self.state.key, &self.state.platform);
        self.state.key = step.cache_key_base.clone();
        self.state.layers += 1;
        let created = self.ctx.created.clone();
        config::commit_history(
            &mut self.state.image,
            &step.created_by,
            true,
            false,
            created,
        );
        self.steps.push(step);
    }

    /// A source's identity in cache keys.
    fn source_id(&self, src: &CopySource) -> String {
        match src {
            CopySource::Context => "context".into(),
            CopySource::Stage(i) => format!(
                "stage:{}",
                self.done.get(i).map(|s| s.key.as_str()).unwrap_or("")
            ),
            CopySource::Image(b) => format!("image:{}", b.digest),
            CopySource::NamedContext(n) => format!("named:{n}"),
        }
    }

    /// What `--from=` (COPY) or `from=` (RUN --mount) names.
    fn resolve_source(
        &mut self,
        from: &str,
        cmd: &Command,
        allow_index: bool,
    ) -> Result<CopySource, PlanError> {
        match stage_ref(self.ctx.df, from, allow_index) {
            Err(m) => return Err(self.invalid(m, cmd)),
            Ok(Some(i)) => {
                if self.done.contains_key(&i) {
                    return Ok(CopySource::Stage(i));
                }
                return Err(self.invalid(
                    format!(
                        "cannot copy from stage {from:?}, it needs to be defined before current stage {:?}",
                        self.stage_name
                    ),
                    cmd,
                ));
            }
            Ok(None) => {}
        }
        let platform = self.ctx.req.platform.clone();
        if let Some((name, nc)) = self.ctx.named_context(from) {
            return match nc {
                NamedContext::Image(r) | NamedContext::OciLayout(r) => self
                    .ctx
                    .resolve_image(&r, &platform)
                    .map(|b| CopySource::Image(Box::new(b)))
                    .map_err(|e| self.invalid(e.to_string(), cmd)),
                _ => Ok(CopySource::NamedContext(name)),
            };
        }
        if Reference::parse(from).is_err() {
            return Err(self.invalid(
                format!("{from:?} is neither a stage of this Dockerfile nor an image reference"),
                cmd,
            ));
        }
        self.ctx
            .resolve_image(from, &platform)
            .map(|b| CopySource::Image(Box::new(b)))
            .map_err(|e| {
                self.invalid(
                    format!("{from:?} is not a stage of this Dockerfile and the image could not be resolved: {e}"),
                    cmd,
                )
            })
    }

    pub(super) fn workdir(&mut self, path: &str, cmd: &Command, on_build: bool) {
        let wd = config::normalize_path(&self.state.image.config.working_dir, path, false);
        self.state.image.config.working_dir = wd.clone();
        self.state.workdir = wd.clone();
        if wd == "/" {
            self.history("WORKDIR /");
            return;
        }
        let user = Some(self.state.image.config.user.clone()).filter(|u| !u.is_empty());
        let mut f = Fields::new();
        field(&mut f, "path", wd.clone());
        opt(&mut f, "user", &user);
        self.push_step(
            StepKind::Workdir {
                path: wd.clone(),
                user,
            },
            cmd,
            format!("WORKDIR {wd}"),
            f,
            on_build,
        );
    }

    pub(super) fn run(
        &mut self,
        run: &Run,
        cmd: &Command,
        on_build: bool,
    ) -> Result<(), PlanError> {
        let script = run.script().map_err(|k| self.err(k, cmd))?;
        let (mut args, script_file) = match script {
            RunScript::Args(a) => (a, None),
            RunScript::ShebangFile { name, data } => {
                (vec![format!("/dev/pipes/{name}")], Some((name, data)))
            }
        };
        let shell = config::with_shell(&self.state.image, &[]);
        let shell = shell[..shell.len().saturating_sub(1)].to_vec();
        if run.cmd.prepend_shell {
            args = config::with_shell(&self.state.image, &args);
        }
        let lex = self.ctx.lex;
        let env = self.state.env.clone();
        let parsed = run
            .parse_mounts(&mut |w: &str| lex.process_word(w, &env).map_err(ErrorKind::from))
            .map_err(|k| self.err(k, cmd))?;
        let mut mounts = Vec::with_capacity(parsed.len());
        for mut m in parsed {
            // BuildKit: a relative target of a bind, cache or tmpfs mount is relative to
            // the working directory; a cache mount without `id=` is keyed by its target
            // as written (`path.Clean`), before that join.
            // A missing target is the working directory; the root is refused.
            if let MountType::Bind | MountType::Cache | MountType::Tmpfs = m.kind {
                let t = m.target.clone().unwrap_or_default();
                if !t.starts_with('/') {
                    if m.kind == MountType::Cache && m.id.is_none() {
                        m.id = Some(crate::pathutil::clean(&t));
                    }
                    m.target = Some(crate::engine::fs::join(&self.state.workdir, &t));
                }
                if m.target.as_deref().map(crate::pathutil::clean).as_deref() == Some("/") {
                    return Err(self.invalid("invalid mount target \"/\"".into(), cmd));
                }
            }
            let from = match &m.from {
                Some(f) => self.resolve_source(f, cmd, false)?,
                None => CopySource::Context,
            };
            mounts.push(RunMount { mount: m, from });
        }
        let created_by = format!("RUN {} # buildkit", run_command_string(&args, self));
        let step = RunStep {
            args,
            shell,
            script_file,
            env: self
                .state
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            user: self.state.user.clone(),
            workdir: self.state.workdir.clone(),
            mounts,
            network: run.network,
            security: run.security,
            devices: run.devices.clone(),
            proxy_env: self.ctx.proxy_env(),
        };
        let mut f = Fields::new();
        list(&mut f, "arg", &step.args);
        list(&mut f, "env", &step.env);
        field(&mut f, "user", step.user.clone());
        field(&mut f, "workdir", step.workdir.clone());
        opt(
            &mut f,
            "script",
            &step.script_file.as_ref().map(|(n, d)| format!("{n}\n{d}")),
        );
        let mounts: Vec<String> = step
            .mounts
            .iter()
            .map(|m| format!("{:?} from={}", m.mount, self.source_id(&m.from)))
            .collect();
        list(&mut f, "mount", &mounts);
        field(&mut f, "network", format!("{:?}", step.network));
        field(&mut f, "security", format!("{:?}", step.security));
        list(&mut f, "device", &step.devices);
        list(&mut f, "proxy", &step.proxy_env);
        self.push_step(StepKind::Run(step), cmd, created_by, f, on_build);
        Ok(())
    }

    pub(super) fn copy(&mut self, c: Copy, cmd: &Command, on_build: bool) -> Result<(), PlanError> {
        for s in &c.sources {
            if is_git(s) {
                return Err(self.invalid("source can't be a git ref for COPY".into(), cmd));
            }
            if is_http(s) {
                return Err(self.invalid("source can't be a URL for COPY".into(), cmd));
            }
        }
        let from = match &c.from {
            Some(f) => self.resolve_source(f, cmd, true)?,
            None => CopySource::Context,
        };
        let step = CopyStep {
            sources: c.sources,
            dest: c.dest,
            from,
            chown: c.chown,
            chmod: c.chmod,
            link: c.link,
            parents: c.parents,
            exclude: c.exclude,
            checksum: None,
            keep_git_dir: false,
            unpack: None,
            heredocs: Vec::new(),
        };
        self.copy_step(step, c.contents, false, cmd, on_build)
    }

    pub(super) fn add(&mut self, a: Add, cmd: &Command, on_build: bool) -> Result<(), PlanError> {
        for s in &a.sources {
            if let Err(e) = crate::engine::copy::git::parse(s) {
                return Err(self.invalid(e.to_string(), cmd));
            }
        }
        let gits = a.sources.iter().filter(|s| is_git(s)).count();
        if gits > 0 && (a.sources.len() > 1 || !a.contents.is_empty()) {
            return Err(self.invalid(
                "ADD of a git repository takes it as the only source (hint: use one ADD per repository)".into(),
                cmd,
            ));
        }
        if let Some(sum) = &a.checksum {
            if a.sources.len() != 1 {
                return Err(self.invalid(
                    "checksum can't be specified for multiple sources".into(),
                    cmd,
                ));
            }
            if !is_http(&a.sources[0]) && !is_git(&a.sources[0]) {
                return Err(self.invalid("checksum requires HTTP(S) or Git sources".into(), cmd));
            }
            if sum.is_empty() {
                return Err(self.invalid("checksum can't be empty".into(), cmd));
            }
        }
        let step = CopyStep {
            sources: a.sources,
            dest: a.dest,
            from: CopySource::Context,
            chown: a.chown,
            chmod: a.chmod,
            link: a.link,
            parents: false,
            exclude: a.exclude,
            checksum: a.checksum,
            keep_git_dir: a.keep_git_dir.unwrap_or(false),
            unpack: a.unpack,
            heredocs: Vec::new(),
        };
        self.copy_step(step, a.contents, true, cmd, on_build)
    }

    fn copy_step(
        &mut self,
        mut step: CopyStep,
        contents: Vec<SourceContent>,
        is_add: bool,
        cmd: &Command,
        on_build: bool,
    ) -> Result<(), PlanError> {
        // An empty `--chown=` / `--chmod=` (also after expansion) is no flag at all, as in
        // BuildKit (`if cfg.chown != ""`).
        step.chown = step.chown.take().filter(|c| !c.is_empty());
        step.chmod = step.chmod.take().filter(|c| !c.is_empty());
        if let Some(m) = &step.chmod {
            check_chmod(m).map_err(|e| self.invalid(e, cmd))?;
        }
        let mut msg = String::from(if is_add { "ADD" } else { "COPY" });
        if step.parents {
            msg.push_str(" --parents");
        }
        if let Some(c) = &step.chown {
            msg.push_str(&format!(" --chown={c}"));
        }
        if let Some(c) = &step.chmod {
            msg.push_str(&format!(" --chmod={c}"));
        }
        for s in &step.sources {
            msg.push(' ');
            msg.push_str(s);
        }
        for h in &contents {
            msg.push_str(&format!(" <<{}", h.path));
        }
        msg.push(' ');
        msg.push_str(&step.dest);
        msg.push_str(" # buildkit");
        step.dest = config::dest_path(&self.state.workdir, &step.dest);
        step.heredocs = contents
            .into_iter()
            .map(|h| (h.path, h.data, h.expand))
            .collect();
        let mut f = Fields::new();
        list(&mut f, "src", &step.sources);
        field(&mut f, "dest", step.dest.clone());
        field(&mut f, "from", self.source_id(&step.from));
        opt(&mut f, "chown", &step.chown);
        opt(&mut f, "chmod", &step.chmod);
        field(&mut f, "link", step.link.to_string());
        field(&mut f, "parents", step.parents.to_string());
        list(&mut f, "exclude", &step.exclude);
        opt(&mut f, "checksum", &step.checksum);
        field(&mut f, "keep_git_dir", step.keep_git_dir.to_string());
        opt(&mut f, "unpack", &step.unpack.map(|u| u.to_string()));
        for (n, c, e) in &step.heredocs {
            field(&mut f, "heredoc", format!("{n}\n{e}\n{c}"));
        }
        let kind = if is_add {
            StepKind::Add(step)
        } else {
            StepKind::Copy(step)
        };
        self.push_step(kind, cmd, msg, f, on_build);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_values() {
        assert!(check_chmod("755").is_ok());
        assert!(check_chmod("0644").is_ok());
        assert!(check_chmod("u+x,go=r").is_ok());
        assert!(check_chmod("9999").is_err());
        assert!(check_chmod("17777").is_err());
        assert!(check_chmod("bogus").is_err());
    }

    #[test]
    fn sources() {
        assert!(is_git("https://github.com/a/b.git#main"));
        assert!(is_git("git@github.com:a/b.git"));
        assert!(is_http("https://example.com/f.tar.gz"));
        assert!(!is_http("dir/file"));
    }
}
