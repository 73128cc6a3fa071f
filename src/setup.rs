//! Machine set-up: registering QEMU user emulation in binfmt_misc (with the F flag, so the
//! interpreter is usable inside build sandboxes) from the installed `qemu-user-static`.

use std::path::{Path, PathBuf};

/// Where binfmt_misc lives.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";
/// Debian's binfmt definitions shipped by `qemu-user-static`.
pub const BINFMTS_DEFS: &str = "/usr/share/binfmts";

/// Architectures `--install all` registers (Docker names).
pub const ALL: &[&str] = &["arm64", "arm", "ppc64le", "s390x", "riscv64"];

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "unknown platform {0:?} (known: amd64, arm64, arm, ppc64le, s390x, riscv64, 386, mips64le)"
    )]
    UnknownArch(String),
    #[error("no QEMU binfmt definition at {path}: install Debian's qemu-user-static (apt-get install qemu-user-static)")]
    MissingDefinition { path: PathBuf },
    #[error("{what}: {source} (registering binfmt handlers needs root)")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// QEMU's name for a Docker architecture.
pub fn qemu_name(arch: &str) -> Result<&'static str, SetupError> {
    Ok(match arch.trim().trim_start_matches("linux/") {
        "arm64" | "aarch64" | "arm64/v8" => "aarch64",
        "arm" | "arm/v7" | "arm/v6" | "armhf" => "arm",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "386" | "i386" => "i386",
        "amd64" | "x86_64" => "x86_64",
        "mips64le" => "mips64el",
        other => return Err(SetupError::UnknownArch(other.to_string())),
    })
}

/// The `register` line for a Debian binfmts definition file.
pub fn register_line(name: &str, def: &str) -> Option<String> {
    let field = |k: &str| {
        def.lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
    };
    let magic = field("magic ")?;
    let mask = field("mask ").unwrap_or_default();
    let interpreter = field("interpreter ")?;
    let offset = field("offset ").unwrap_or_else(|| "0".into());
    let mut flags = String::from("F");
    if field("preserve ").as_deref() == Some("yes") {
        flags.push('P');
    }
    if field("credentials ").as_deref() == Some("yes") {
        flags.push('C');
    }
    Some(format!(
        ":{name}:M:{offset}:{magic}:{mask}:{interpreter}:{flags}"
    ))
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SetupError {
    let what = what.into();
    move |source| SetupError::Io { what, source }
}

/// Registers the handlers for `arches`; returns a line per architecture.
pub fn install_qemu(arches: &[String]) -> Result<Vec<String>, SetupError> {
    let dir = Path::new(BINFMT_DIR);
    if !dir.join("register").exists() {
        rustix::mount::mount(
            "binfmt_misc",
            dir,
            "binfmt_misc",
            rustix::mount::MountFlags::empty(),
            None::<&std::ffi::CStr>,
        )
        .map_err(|e| SetupError::Io {
            what: format!("mounting binfmt_misc at {BINFMT_DIR}"),
            source: e.into(),
        })?;
    }
    let mut report = Vec::new();
    for a in arches {
        let q = qemu_name(a)?;
        if q == crate::engine::run::qemu::qemu_arch(crate::engine::run::host_arch()) {
            report.push(format!("{a}: native on this machine"));
            continue;
        }
        let name = format!("qemu-{q}");
        let entry = dir.join(&name);
        if let Ok(cur) = std::fs::read_to_string(&entry) {
            let flags = cur
                .lines()
                .find_map(|l| l.strip_prefix("flags: "))
                .unwrap_or("");
            if cur.starts_with("enabled") && flags.contains('F') {
                report.push(format!("{a}: already registered ({name}, flags {flags})"));
                continue;
            }
            std::fs::write(&entry, "-1").map_err(io(format!("removing {}", entry.display())))?;
        }
        let def_path = Path::new(BINFMTS_DEFS).join(&name);
        let def =
            std::fs::read_to_string(&def_path).map_err(|_| SetupError::MissingDefinition {
                path: def_path.clone(),
            })?;
        let line =
            register_line(&name, &def).ok_or(SetupError::MissingDefinition { path: def_path })?;
        std::fs::write(dir.join("register"), &line).map_err(io(format!("registering {name}")))?;
        report.push(format!("{a}: registered {name}"));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lines() {
        assert_eq!(qemu_name("arm64").unwrap(), "aarch64");
        assert_eq!(qemu_name("linux/arm/v7").unwrap(), "arm");
        assert!(qemu_name("vax").is_err());
        let def = "package qemu-user-static\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nmagic \\x7fELF\noffset 0\nmask \\xff\\xff\ncredentials no\nfix_binary yes\npreserve yes\n";
        assert_eq!(
            register_line("qemu-aarch64", def).unwrap(),
            ":qemu-aarch64:M:0:\\x7fELF:\\xff\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:FP"
        );
    }
}
