//! Finding and reading bake files: `-f` (repeatable, `-` for stdin), `BUILDX_BAKE_FILE`,
//! or the default lookup order.

use super::syntax::{Format, Source};
use std::io::Read;
use std::path::Path;

/// Environment variables buildx reads for file lookup.
pub const ENV_BAKE_FILE: &str = "BUILDX_BAKE_FILE";
pub const ENV_BAKE_PATH_SEPARATOR: &str = "BUILDX_BAKE_PATH_SEPARATOR";
pub const ENV_FILE_RELATIVE_PATHS: &str = "BUILDX_BAKE_FILE_RELATIVE_PATHS";
pub const ENV_DISABLE_VARS_ENV_LOOKUP: &str = "BUILDX_BAKE_DISABLE_VARS_ENV_LOOKUP";

/// Files looked up, in order, when none is named (every one that exists is read).
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker-bake.json",
    "docker-bake.hcl",
    "docker-bake.toml",
    "kiln.toml",
    "docker-bake.override.json",
    "docker-bake.override.hcl",
    "docker-bake.override.toml",
];

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read {name}: {source}")]
    Read {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("couldn't find a bake definition")]
    NotFound,
}

/// The names of the files to read: `-f` values, else `BUILDX_BAKE_FILE`, else none
/// (meaning the default lookup).
pub fn file_names(
    flags: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Vec<String>, bool), LoadError> {
    if !flags.is_empty() {
        return Ok((flags.to_vec(), false));
    }
    let Some(list) = env(ENV_BAKE_FILE) else {
        return Ok((Vec::new(), false));
    };
    let sep = env(ENV_BAKE_PATH_SEPARATOR)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| ":".to_string());
    let mut out = Vec::new();
    for f in list.split(sep.as_str()) {
        let f = f.trim();
        if f.is_empty() {
            continue;
        }
        if f != "-" {
            std::fs::metadata(f).map_err(|source| LoadError::Read {
                name: f.to_string(),
                source,
            })?;
        }
        out.push(f.to_string());
    }
    Ok((out, true))
}

/// The format a file name implies: by extension, else guessed from the content.
pub fn format_of(name: &str, text: &str) -> Format {
    match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        Some("hcl") => Format::Hcl,
        Some("toml") => Format::Toml,
        _ => {
            if hcl_edit::parser::parse_body(text).is_ok() {
                Format::Hcl
            } else if serde_json::from_str::<serde_json::Value>(text).is_ok() {
                Format::Json
            } else if toml::from_str::<toml::Table>(text).is_ok() {
                Format::Toml
            } else {
                Format::Hcl
            }
        }
    }
}

/// Reads the named files (or the defaults that exist).
pub fn read_files(names: &[String], stdin: &mut dyn Read) -> Result<Vec<Source>, LoadError> {
    let (names, defaults): (Vec<String>, bool) = if names.is_empty() {
        (DEFAULT_FILES.iter().map(|s| s.to_string()).collect(), true)
    } else {
        (names.to_vec(), false)
    };
    let mut out = Vec::new();
    for name in names {
        let text = if name == "-" {
            let mut s = String::new();
            stdin
                .read_to_string(&mut s)
                .map_err(|source| LoadError::Read {
                    name: "stdin".into(),
                    source,
                })?;
            s
        } else {
            match std::fs::read(&name) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) if defaults && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(LoadError::Read { name, source }),
            }
        };
        let format = format_of(&name, &text);
        out.push(Source { name, text, format });
    }
    if out.is_empty() {
        return Err(LoadError::NotFound);
    }
    Ok(out)
}
