//! Foreign platforms: which architectures this machine can execute, natively or through a
//! QEMU user-emulation handler registered in binfmt_misc.
//!
//! The sandbox pivots into the image's root filesystem, where no QEMU binary exists, so
//! the handler must have the `F` (fix binary) flag: the kernel opened the interpreter when
//! it was registered and uses that file in every mount namespace.

use std::path::Path;

use super::{host_arch, RunError};

const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// Architectures `kiln builder inspect` checks, with the platform string they stand for.
const KNOWN: &[(&str, &str)] = &[
    ("amd64", "linux/amd64"),
    ("arm64", "linux/arm64"),
    ("arm", "linux/arm/v7"),
    ("386", "linux/386"),
    ("ppc64le", "linux/ppc64le"),
    ("s390x", "linux/s390x"),
    ("riscv64", "linux/riscv64"),
    ("mips64le", "linux/mips64le"),
    ("loong64", "linux/loong64"),
];

/// The QEMU name of a GOARCH-style architecture.
pub fn qemu_arch(arch: &str) -> &str {
    match arch {
        "amd64" | "x86_64" => "x86_64",
        "arm64" | "aarch64" => "aarch64",
        "arm" | "armhf" | "armel" => "arm",
        "386" | "i386" => "i386",
        "mips64le" => "mips64el",
        "loong64" => "loongarch64",
        other => other,
    }
}

/// Whether the host runs `arch` binaries without emulation.
fn native(arch: &str) -> bool {
    let host = host_arch();
    let arch = match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i386" => "386",
        a => a,
    };
    arch == host || (host == "amd64" && arch == "386")
}

/// A parsed binfmt_misc entry.
struct Handler {
    enabled: bool,
    flags: String,
    interpreter: String,
}

fn parse_handler(text: &str) -> Handler {
    let mut h = Handler {
        enabled: false,
        flags: String::new(),
        interpreter: String::new(),
    };
    for line in text.lines() {
        let line = line.trim();
        if line == "enabled" {
            h.enabled = true;
        } else if let Some(f) = line.strip_prefix("flags:") {
            h.flags = f.trim().to_string();
        } else if let Some(i) = line.strip_prefix("interpreter") {
            h.interpreter = i.trim().to_string();
        }
    }
    h
}

/// Finds the handler for `qarch`: `qemu-<qarch>` by name, else any entry whose
/// interpreter is a QEMU binary for that architecture.
fn find_handler(dir: &Path, qarch: &str) -> Option<(String, Handler)> {
    let named = dir.join(format!("qemu-{qarch}"));
    if let Ok(text) = std::fs::read_to_string(&named) {
        return Some((named.display().to_string(), parse_handler(&text)));
    }
    let entries = std::fs::read_dir(dir).ok()?;
    let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for path in names {
        let name = path.file_name()?.to_string_lossy().into_owned();
        if name == "register" || name == "status" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let h = parse_handler(&text);
        let interp = h.interpreter.rsplit('/').next().unwrap_or_default();
        if interp.starts_with(&format!("qemu-{qarch}"))
            || interp.starts_with(&format!("{qarch}-binfmt"))
        {
            return Some((path.display().to_string(), h));
        }
    }
    None
}

/// Checks, before anything starts, that `arch` binaries can run here. Native
/// architectures always can; others need an enabled binfmt_misc handler with the F flag.
pub fn can_run(arch: &str) -> Result<(), RunError> {
    can_run_in(Path::new(BINFMT_DIR), arch)
}

fn can_run_in(dir: &Path, arch: &str) -> Result<(), RunError> {
    if arch.is_empty() || native(arch) {
        return Ok(());
    }
    let qarch = qemu_arch(arch);
    let err = |reason: String| RunError::NoEmulator {
        arch: arch.to_string(),
        reason,
    };
    if !dir.join("status").exists() {
        return Err(err(format!(
            "binfmt_misc is not mounted at {}",
            dir.display()
        )));
    }
    match std::fs::read_to_string(dir.join("status")) {
        Ok(s) if s.trim() == "enabled" => {}
        _ => return Err(err("binfmt_misc is disabled".into())),
    }
    let Some((path, h)) = find_handler(dir, qarch) else {
        return Err(err(format!(
            "no binfmt_misc handler for {qarch} in {}",
            dir.display()
        )));
    };
    if !h.enabled {
        return Err(err(format!("the handler {path} is disabled")));
    }
    if !h.flags.contains('F') {
        return Err(err(format!(
            "the handler {path} lacks the F flag (flags: {:?}), so its interpreter is not \
             usable inside the image",
            h.flags
        )));
    }
    Ok(())
}

/// The platforms this machine can run RUN steps for: the host's, then every known
/// architecture with a usable handler.
pub fn supported_platforms() -> Vec<String> {
    supported_in(Path::new(BINFMT_DIR))
}

fn supported_in(dir: &Path) -> Vec<String> {
    let host = host_arch();
    let mut out = Vec::new();
    if let Some((_, p)) = KNOWN.iter().find(|(a, _)| *a == host) {
        out.push((*p).to_string());
    } else {
        out.push(format!("linux/{host}"));
    }
    for (arch, platform) in KNOWN {
        if *arch != host && can_run_in(dir, arch).is_ok() && !out.iter().any(|p| p == platform) {
            out.push((*platform).to_string());
            if *arch == "arm" {
                out.push("linux/arm/v6".to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(entries: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("status"), "enabled\n").expect("write");
        for (name, text) in entries {
            std::fs::write(d.path().join(name), text).expect("write");
        }
        d
    }

    #[test]
    fn handler_needs_enabled_and_fix_binary() {
        let ok =
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n";
        let d = fake(&[("qemu-aarch64", ok)]);
        let foreign = if host_arch() == "arm64" {
            "amd64"
        } else {
            "arm64"
        };
        if foreign == "arm64" {
            assert!(can_run_in(d.path(), "arm64").is_ok());
            assert!(supported_in(d.path()).contains(&"linux/arm64".to_string()));
        }
        let d = fake(&[("qemu-aarch64", "enabled\nflags: P\n")]);
        if foreign == "arm64" {
            let e = can_run_in(d.path(), "arm64").unwrap_err().to_string();
            assert!(e.contains("F flag") && e.contains("kiln setup qemu"), "{e}");
        }
        let d = fake(&[("qemu-aarch64", "disabled\nflags: PF\n")]);
        if foreign == "arm64" {
            assert!(can_run_in(d.path(), "arm64").is_err());
        }
        let d = fake(&[]);
        let e = can_run_in(d.path(), "s390x").unwrap_err().to_string();
        assert!(e.contains("kiln setup qemu"), "{e}");
        assert!(can_run_in(d.path(), host_arch()).is_ok());
    }

    #[test]
    fn handler_found_by_interpreter() {
        let d = fake(&[(
            "arm64-emu",
            "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OCF\n",
        )]);
        if host_arch() != "arm64" {
            assert!(can_run_in(d.path(), "arm64").is_ok());
        }
    }
}
