//! RUN steps: the plan's command, user, environment and mounts turned into a run by the
//! engine's executor ([`crate::engine::run::Selected`]: the sandbox, or the unprivileged
//! executor) on the stage's layers; what the command changed becomes the layer.

use super::{BuildError, Run, StageState};
use crate::bake::entries::Secret;
use crate::dockerfile::instructions::{MountType, Network, Security};
use crate::engine::context::digest_sources;
use crate::engine::fs::LayerSpec;
use crate::engine::layered_fs::LayeredFs;
use crate::engine::plan::{CopySource, RunStep};
use crate::engine::run::{self, MountSpec, NetworkMode, RunSpec};
use crate::engine::{rootfs, users};
use crate::oci::Platform;
use crate::progress::Event;
use std::path::{Path, PathBuf};

/// Lines of output shown when a RUN fails.
const TAIL_LINES: usize = 20;

/// What a RUN made: its layer, and what the layer's files need until it is written (the
/// scratch dir, the unprivileged executor's lease on `/`).
pub(super) struct RunLayer {
    pub spec: LayerSpec,
    /// The overlay upper dir (sandbox only), with the mount stubs that are not part of
    /// the layer already removed: an exact overlay-format view of the layer, so the store
    /// can keep it as the layer's extracted directory instead of unpacking the blob again.
    pub upper: Option<PathBuf>,
    _hold: run::Hold,
    _scratch: tempfile::TempDir,
}

impl Run<'_> {
    /// What a RUN's mounts read, for its cache key (secrets and caches excluded).
    pub(super) fn run_inputs(&mut self, r: &RunStep, line: usize) -> Result<String, BuildError> {
        let mut material = String::new();
        for m in &r.mounts {
            if m.mount.kind != MountType::Bind {
                continue;
            }
            let source = m.mount.source.clone().unwrap_or_else(|| ".".into());
            match &m.from {
                CopySource::Context => material.push_str(&digest_sources(
                    self.ctx,
                    std::slice::from_ref(&source),
                    &self.engine.stat_cache,
                )?),
                CopySource::Stage(j) => material.push_str(&self.stage(*j)?.key),
                CopySource::Image(b) => material.push_str(&b.digest),
                CopySource::NamedContext(n) => {
                    let fs = self.named_local(n, line)?;
                    material.push_str(&format!("named:{n}\0"));
                    material.push_str(&digest_sources(
                        &fs,
                        std::slice::from_ref(&source),
                        &self.engine.stat_cache,
                    )?);
                }
            }
            material.push('\n');
        }
        Ok(material)
    }

    /// Runs a RUN step (`key`: its cache key); returns its layer and what the layer's
    /// files need until it is written.
    pub(super) fn run_step(
        &mut self,
        state: &mut StageState,
        r: &RunStep,
        platform: &Platform,
        line: usize,
        id: u64,
        key: &str,
    ) -> Result<RunLayer, BuildError> {
        let view = self.view(state)?;
        let user = users::resolve_run_user(&view, if r.user.is_empty() { "0" } else { &r.user })
            .map_err(|e| BuildError::from_user(self.df, line, e))?;
        if r.security == Security::Insecure
            && !self.opts.allow.iter().any(|a| a == "security.insecure")
        {
            return Err(BuildError::step(
                self.df,
                line,
                "RUN --security=insecure needs the security.insecure entitlement",
            )
            .with_hint("pass --allow security.insecure"));
        }
        let scratch = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(self.engine.store.tmp_dir())
            .map_err(|e| BuildError::Other(format!("creating a scratch directory: {e}")))?;
        let mut env = r.env.clone();
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={}", user.home));
        }
        env.extend(r.proxy_env.iter().cloned());
        let mut mounts = Vec::new();
        if let Some((name, data)) = &r.script_file {
            let p = scratch.path().join(format!("script-{name}"));
            std::fs::write(&p, data)
                .map_err(|e| BuildError::Other(format!("{}: {e}", p.display())))?;
            set_mode(&p, 0o755)?;
            mounts.push(MountSpec::Bind {
                source: p,
                target: format!("/dev/pipes/{name}"),
                readonly: true,
            });
        }
        for (i, m) in r.mounts.iter().enumerate() {
            if let Some(spec) = self.mount(&m.mount, &m.from, i, scratch.path(), line)? {
                mounts.push(spec);
            }
        }
        // BuildKit points SSH_AUTH_SOCK at the first ssh mount.
        if let Some(MountSpec::Ssh { target, .. }) =
            mounts.iter().find(|m| matches!(m, MountSpec::Ssh { .. }))
        {
            if !env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
                env.push(format!("SSH_AUTH_SOCK={target}"));
            }
        }
        let targets: Vec<String> = mounts
            .iter()
            .filter_map(|m| m.target().map(str::to_string))
            .collect();
        let spec = RunSpec {
            args: r.args.clone(),
            env,
            cwd: if r.workdir.is_empty() {
                "/".into()
            } else {
                r.workdir.clone()
            },
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids.clone(),
            hostname: "buildkitsandbox".into(),
            network: match r.network {
                Network::None => NetworkMode::None,
                Network::Host => NetworkMode::Host,
                Network::Default => NetworkMode::Default,
            },
            mounts,
            platform_arch: platform.architecture.clone(),
            extra_hosts: self.opts.extra_hosts.clone(),
            insecure: r.security == Security::Insecure,
        };
        // Identical layers (e.g. two empty RUN layers) share one extracted dir; overlayfs
        // refuses a lowerdir listed twice, and the topmost copy gives the same view.
        let mut lower: Vec<PathBuf> = Vec::new();
        for d in state.dirs.iter().rev() {
            if !lower.contains(d) {
                lower.push(d.clone());
            }
        }
        let mut tail: Vec<String> = Vec::new();
        let mut partial = String::new();
        let sink = self.sink;
        let mut out = |chunk: &[u8]| {
            partial.push_str(&String::from_utf8_lossy(chunk));
            while let Some(pos) = partial.find('\n') {
                let line: String = partial.drain(..=pos).collect();
                let line = line.trim_end_matches('\n').to_string();
                sink.event(&Event::Log {
                    id,
                    line: line.clone(),
                });
                tail.push(line);
                if tail.len() > TAIL_LINES {
                    tail.remove(0);
                }
            }
        };
        let work = scratch.path().join("sandbox");
        std::fs::create_dir_all(&work)
            .map_err(|e| BuildError::Other(format!("{}: {e}", work.display())))?;
        let executor = self.engine.executor();
        if let Some(note) = executor.take_note() {
            self.sink.event(&Event::Info { message: note });
        }
        let job = run::Job {
            spec: &spec,
            lower: &lower,
            view: &view,
            scratch: &work,
            mount_targets: &targets,
            parent_key: &state.key,
            key,
        };
        let finished = executor.run(&job, &mut out).map_err(|e| {
            let hint = e.hint();
            let err = BuildError::step(self.df, line, e.to_string());
            match hint {
                Some(h) => err.with_hint(h),
                None => err,
            }
        })?;
        for l in &finished.log {
            sink.event(&Event::Log {
                id,
                line: l.clone(),
            });
        }
        for note in &finished.notes {
            sink.event(&Event::Warning {
                message: note.clone(),
            });
        }
        if !partial.is_empty() {
            tail.push(partial.clone());
        }
        if finished.exit_code != 0 {
            let shown = r.args.join(" ");
            let mut msg = format!(
                "process \"{shown}\" did not complete successfully: exit code: {}",
                finished.exit_code
            );
            if !tail.is_empty() {
                msg.push_str("\nlast output:\n");
                msg.push_str(&tail.join("\n"));
            }
            return Err(BuildError::step(self.df, line, msg));
        }
        let Some(layer) = finished.layer else {
            return Err(BuildError::Other(
                "internal: a successful RUN without a layer".into(),
            ));
        };
        Ok(RunLayer {
            spec: layer,
            upper: finished.upper,
            _hold: finished.hold,
            _scratch: scratch,
        })
    }

    fn mount(
        &mut self,
        m: &crate::dockerfile::instructions::Mount,
        from: &CopySource,
        i: usize,
        scratch: &Path,
        line: usize,
    ) -> Result<Option<MountSpec>, BuildError> {
        let target = m.target.clone().unwrap_or_default();
        match m.kind {
            MountType::Tmpfs => Ok(Some(MountSpec::Tmpfs {
                target,
                size: (m.size_limit > 0).then_some(m.size_limit),
            })),
            MountType::Cache => {
                // BuildKit's default cache id: the target, cleaned (`/c/` and `/c` share).
                let id =
                    m.id.clone()
                        .unwrap_or_else(|| crate::pathutil::clean(&target));
                let dir = self
                    .engine
                    .store
                    .root()
                    .join("cache-mounts")
                    .join(format!("{:x}", super::sha256(id.as_bytes())));
                if !dir.exists() {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| BuildError::Other(format!("{}: {e}", dir.display())))?;
                    set_mode(&dir, m.mode.unwrap_or(0o755))?;
                    let _ = rustix::fs::chown(
                        &dir,
                        Some(rustix::process::Uid::from_raw(m.uid.unwrap_or(0))),
                        Some(rustix::process::Gid::from_raw(m.gid.unwrap_or(0))),
                    );
                }
                Ok(Some(MountSpec::Cache {
                    source: dir,
                    target,
                    readonly: m.read_only,
                }))
            }
            MountType::Bind => {
                let source = m.source.clone().unwrap_or_else(|| "/".into());
                let root = match from {
                    // A writable bind gets a copy: what the RUN writes is thrown away and
                    // never reaches the user's files.
                    CopySource::Context if !m.read_only => {
                        let dir = scratch.join(format!("bind-{i}"));
                        rootfs::write_dir(self.ctx, &dir)
                            .map_err(|e| BuildError::Other(e.to_string()))?;
                        dir
                    }
                    CopySource::Context => std::fs::canonicalize(self.ctx.root()).map_err(|e| {
                        BuildError::Other(format!("{}: {e}", self.ctx.root().display()))
                    })?,
                    CopySource::Stage(j) => {
                        let mut s = self.stage(*j)?;
                        let v = self.view(&mut s)?;
                        self.materialize(&v, scratch, i)?
                    }
                    CopySource::Image(b) => {
                        let mut s = self.image_state(b, "")?;
                        let v = self.view(&mut s)?;
                        self.materialize(&v, scratch, i)?
                    }
                    // A local directory: bound read-only as it is (BuildKit's local
                    // source), or a copy when the RUN may write (its writes are thrown
                    // away) or when a .dockerignore hides some of its files.
                    CopySource::NamedContext(n) => {
                        let fs = self.named_local(n, line)?;
                        if m.read_only && fs.matcher().is_empty() {
                            std::fs::canonicalize(fs.root()).map_err(|e| {
                                BuildError::Other(format!("{}: {e}", fs.root().display()))
                            })?
                        } else {
                            let dir = scratch.join(format!("bind-{i}"));
                            rootfs::write_dir(&fs, &dir)
                                .map_err(|e| BuildError::Other(e.to_string()))?;
                            dir
                        }
                    }
                };
                let path = root.join(source.trim_start_matches('/'));
                if !path.exists() {
                    return Err(BuildError::step(
                        self.df,
                        line,
                        format!(
                            "failed to mount {}: {source:?} not found in the mount source",
                            target
                        ),
                    ));
                }
                Ok(Some(MountSpec::Bind {
                    source: path,
                    target,
                    readonly: m.read_only,
                }))
            }
            MountType::Secret => {
                let id = m
                    .id
                    .clone()
                    .unwrap_or_else(|| target.rsplit('/').next().unwrap_or_default().to_string());
                let value = self.secret_value(&id);
                let Some(value) = value else {
                    if m.required {
                        return Err(BuildError::step(
                            self.df,
                            line,
                            format!("secret {id} not found"),
                        )
                        .with_hint(format!(
                            "pass it with --secret id={id},src=FILE or id={id},env=VAR"
                        )));
                    }
                    return Ok(None);
                };
                if let Some(name) = &m.env {
                    if m.target.is_none() {
                        return Ok(Some(MountSpec::SecretEnv {
                            name: name.clone(),
                            value: String::from_utf8_lossy(&value).into_owned(),
                        }));
                    }
                }
                let file = scratch.join(format!("secret-{i}"));
                std::fs::write(&file, &value)
                    .map_err(|e| BuildError::Other(format!("{}: {e}", file.display())))?;
                set_mode(&file, 0o600)?;
                Ok(Some(MountSpec::Secret {
                    source: file,
                    target: if target.is_empty() {
                        format!("/run/secrets/{id}")
                    } else {
                        target
                    },
                    mode: m.mode.unwrap_or(0o400),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                }))
            }
            MountType::Ssh => {
                let id = m.id.clone().unwrap_or_else(|| "default".into());
                let socket = self.ssh_socket(&id);
                let Some(socket) = socket else {
                    if m.required {
                        return Err(BuildError::step(
                            self.df,
                            line,
                            format!("no SSH agent socket for ssh id {id:?}"),
                        )
                        .with_hint(format!(
                            "pass --ssh {id}=/path/to/agent.sock (or --ssh default with SSH_AUTH_SOCK set)"
                        )));
                    }
                    return Ok(None);
                };
                Ok(Some(MountSpec::Ssh {
                    socket,
                    target: if target.is_empty() {
                        "/run/buildkit/ssh_agent.0".into()
                    } else {
                        target
                    },
                    mode: m.mode.unwrap_or(0o600),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                }))
            }
        }
    }

    /// The agent socket for an ssh id from `--ssh` (`default` = `$SSH_AUTH_SOCK`).
    fn ssh_socket(&self, id: &str) -> Option<PathBuf> {
        let s = self.opts.ssh.iter().find(|s| s.id == id)?;
        match s.paths.first() {
            Some(p) => Some(PathBuf::from(p)),
            None => std::env::var_os("SSH_AUTH_SOCK")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }

    /// A secret's bytes from `--secret` (file or environment variable).
    fn secret_value(&self, id: &str) -> Option<Vec<u8>> {
        let s: &Secret = self.opts.secrets.iter().find(|s| s.id == id)?;
        if !s.env.is_empty() {
            return std::env::var(&s.env).ok().map(String::into_bytes);
        }
        let src = if s.src.is_empty() { &s.id } else { &s.src };
        if s.src.is_empty() {
            if let Ok(v) = std::env::var(&s.id) {
                return Some(v.into_bytes());
            }
        }
        std::fs::read(src).ok()
    }

    fn materialize(&self, v: &LayeredFs, scratch: &Path, i: usize) -> Result<PathBuf, BuildError> {
        let dir = scratch.join(format!("bind-{i}"));
        rootfs::write_dir(v, &dir).map_err(|e| BuildError::Other(e.to_string()))?;
        Ok(dir)
    }
}

fn set_mode(p: &Path, mode: u32) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| BuildError::Other(format!("{}: {e}", p.display())))
}
