//! Platforms (`os/arch[/variant]`): parsing, normalisation and matching with the rules of
//! containerd's platforms package: `arm64` = `linux/arm64` = `linux/arm64/v8`,
//! `arm` = `linux/arm/v7`, `x86_64` = `amd64`, `i386` = `386`, `amd64/v1` = `amd64`.

use super::OciError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A platform as it appears in descriptors and image configs (Go field order for JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
];

fn is_known_arch(a: &str) -> bool {
    matches!(
        a,
        "386"
            | "amd64"
            | "amd64p32"
            | "arm"
            | "armbe"
            | "arm64"
            | "arm64be"
            | "ppc64"
            | "ppc64le"
            | "loong64"
            | "mips"
            | "mipsle"
            | "mips64"
            | "mips64le"
            | "mips64p32"
            | "mips64p32le"
            | "ppc"
            | "riscv"
            | "riscv64"
            | "s390"
            | "s390x"
            | "sparc"
            | "sparc64"
            | "wasm"
    )
}

/// The architecture kiln itself runs on, in OCI spelling.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// (arch, variant) in normalised spelling.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.to_ascii_lowercase();
    match arch.as_str() {
        "i386" | "386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let v = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".into(),
                _ => match variant.strip_prefix('v') {
                    Some(rest) if rest.starts_with("8.") || rest.starts_with("9.") => {
                        variant.clone()
                    }
                    _ => variant,
                },
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), v)
        }
        _ => (arch, variant),
    }
}

impl Platform {
    pub fn new(os: &str, arch: &str, variant: &str) -> Platform {
        Platform {
            architecture: arch.to_string(),
            os: os.to_string(),
            variant: variant.to_string(),
            ..Platform::default()
        }
    }

    /// Parses `os/arch[/variant]`, `arch` or `os` and returns it normalised.
    pub fn parse(spec: &str) -> Result<Platform, OciError> {
        let err = |reason: &str| OciError::InvalidPlatform {
            input: spec.to_string(),
            reason: reason.to_string(),
        };
        if spec.contains('*') {
            return Err(err("wildcards are not supported"));
        }
        let parts: Vec<&str> = spec.split('/').collect();
        if parts.iter().any(|p| !valid_part(p)) {
            return Err(err(&format!(
                "{spec:?}: unknown operating system or architecture: invalid argument"
            )));
        }
        let p = match parts.as_slice() {
            [one] => {
                let lower = one.to_ascii_lowercase();
                let os = if lower == "macos" {
                    "darwin".to_string()
                } else {
                    lower.clone()
                };
                if KNOWN_OS.contains(&os.as_str()) {
                    Platform::new(&os, host_arch(), "")
                } else {
                    let (arch, variant) = normalize_arch(&lower, "");
                    if !is_known_arch(&arch) {
                        return Err(err(&format!(
                            "{spec:?}: unknown operating system or architecture: invalid argument"
                        )));
                    }
                    Platform::new("linux", &arch, &variant)
                }
            }
            [os, arch] => Platform::new(os, arch, ""),
            [os, arch, variant] => Platform::new(os, arch, variant),
            _ => {
                return Err(err(&format!(
                    "{spec:?}: cannot parse platform specifier: invalid argument"
                )))
            }
        };
        Ok(p.normalize())
    }

    /// The normalised form (lower-case OS, canonical architecture and variant).
    pub fn normalize(&self) -> Platform {
        let os = self.os.to_ascii_lowercase();
        let os = if os == "macos" { "darwin".into() } else { os };
        let (architecture, variant) = normalize_arch(&self.architecture, &self.variant);
        Platform {
            architecture,
            os,
            variant,
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
        }
    }

    /// True when both name the same platform after normalisation (os.version and
    /// os.features are not compared).
    pub fn matches(&self, other: &Platform) -> bool {
        let a = self.normalize();
        let b = other.normalize();
        a.os == b.os && a.architecture == b.architecture && a.variant == b.variant
    }

    /// How well `candidate` serves a request for `self`: `Some(0)` for an exact match,
    /// higher numbers for compatible fallbacks (arm/v7 runs arm/v6 and v5, arm64 runs
    /// arm/v8.., amd64/v3 runs v2 and v1, amd64 runs 386), `None` when it cannot run.
    pub fn match_rank(&self, candidate: &Platform) -> Option<usize> {
        let want = self.normalize();
        let have = candidate.normalize();
        if want.os != have.os {
            return None;
        }
        if want.architecture == have.architecture && want.variant == have.variant {
            return Some(0);
        }
        let vnum = |v: &str| v.trim_start_matches('v').parse::<u32>().ok();
        match (want.architecture.as_str(), have.architecture.as_str()) {
            ("arm", "arm") => match (vnum(&want.variant), vnum(&have.variant)) {
                (Some(w), Some(h)) if h < w => Some((w - h) as usize),
                _ => None,
            },
            ("arm64", "arm") => match vnum(&have.variant) {
                Some(h) if h <= 8 => Some(10 + (8 - h) as usize),
                _ => None,
            },
            ("amd64", "amd64") => {
                let w = if want.variant.is_empty() {
                    1
                } else {
                    vnum(&want.variant)?
                };
                let h = if have.variant.is_empty() {
                    1
                } else {
                    vnum(&have.variant)?
                };
                (h < w).then(|| (w - h) as usize)
            }
            ("amd64", "386") => Some(20),
            _ => None,
        }
    }

    /// The platform this machine runs (linux, its architecture).
    pub fn host() -> Platform {
        let p = Platform::new("linux", host_arch(), "");
        if p.architecture == "arm" {
            return Platform::new("linux", "arm", "v7");
        }
        p
    }

    pub fn is_empty(&self) -> bool {
        self.os.is_empty() && self.architecture.is_empty()
    }
}

impl fmt::Display for Platform {
    /// `os/arch[/variant]`, as written (not normalised); `unknown` for missing parts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = if self.os.is_empty() {
            "unknown"
        } else {
            &self.os
        };
        let arch = if self.architecture.is_empty() {
            "unknown"
        } else {
            &self.architecture
        };
        write!(f, "{os}/{arch}")?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        Platform::parse(s).unwrap().to_string()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(p("linux/arm64/v8"), "linux/arm64");
        assert_eq!(p("linux/aarch64"), "linux/arm64");
        assert_eq!(p("arm64"), "linux/arm64");
        assert_eq!(p("arm"), "linux/arm/v7");
        assert_eq!(p("linux/arm"), "linux/arm/v7");
        assert_eq!(p("linux/armhf"), "linux/arm/v7");
        assert_eq!(p("linux/arm/6"), "linux/arm/v6");
        assert_eq!(p("386"), "linux/386");
        assert_eq!(p("linux/i386"), "linux/386");
        assert_eq!(p("linux/x86_64"), "linux/amd64");
        assert_eq!(p("linux/amd64/v2"), "linux/amd64/v2");
        assert_eq!(p("linux/amd64/v1"), "linux/amd64");
        assert_eq!(p("Linux/AMD64"), "linux/amd64");
        assert_eq!(p("windows/amd64"), "windows/amd64");
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "linux/amd64/v2/extra",
            "",
            "linux//amd64",
            "notanarch",
            "linux/*",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn matches_and_ranks() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert!(arm64.matches(&Platform::new("linux", "arm64", "v8")));
        assert!(Platform::parse("linux/arm")
            .unwrap()
            .matches(&Platform::new("linux", "arm", "v7")));
        assert!(!arm64.matches(&Platform::new("linux", "amd64", "")));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(v7.match_rank(&Platform::new("linux", "arm", "v6")), Some(1));
        assert_eq!(v7.match_rank(&Platform::new("linux", "arm", "v8")), None);
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(amd.match_rank(&Platform::new("linux", "386", "")), Some(20));
        assert_eq!(amd.match_rank(&Platform::new("windows", "amd64", "")), None);
    }

    #[test]
    fn displays_verbatim() {
        assert_eq!(
            Platform::new("linux", "arm64", "v8").to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(Platform::default().to_string(), "unknown/unknown");
    }
}
