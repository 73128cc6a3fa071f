//! `kiln cache`: the local build cache in $KILN_HOME.

use crate::engine::exec::BuildError;
use crate::engine::store::{PruneOptions, Store};
use crate::error::Error;
use clap::Subcommand;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show disk usage of the build cache
    Du,
    /// Remove build cache
    Prune {
        /// Keep this much storage (e.g. 10GB, 512MB)
        #[arg(long)]
        keep_storage: Option<String>,
        /// Filters, e.g. until=24h
        #[arg(long)]
        filter: Vec<String>,
        /// Remove everything
        #[arg(short, long)]
        all: bool,
    },
}

impl CacheCommand {
    /// Whether it removes from the store (files a rootless build made may belong to the
    /// user's subordinate ids: removing them takes the user namespace).
    pub fn removes(&self) -> bool {
        matches!(self, CacheCommand::Prune { .. })
    }
}

fn store() -> Result<Store, Error> {
    Store::from_env().map_err(|e| Error::Build(Box::new(BuildError::from(e))))
}

/// Bytes in the units `docker buildx du` uses.
fn human(n: u64) -> String {
    const UNITS: &[&str] = &["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}{}", UNITS[u])
    }
}

/// `10GB`, `512MB`, `1.5gb`, plain bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((n * mult) as u64)
}

/// `24h`, `30m`, `90s`, `7d`.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

pub fn run(cmd: CacheCommand) -> Result<(), Error> {
    let usage = |m: String| Error::Usage {
        message: m,
        hint: None,
    };
    match cmd {
        CacheCommand::Du => {
            let s = store()?;
            let u = s.du().map_err(|e| Error::Build(Box::new(e.into())))?;
            println!("{:<22}{:>8}{:>14}", "KIND", "COUNT", "SIZE");
            println!(
                "{:<22}{:>8}{:>14}",
                "cache records",
                u.records,
                human(u.records_bytes)
            );
            println!("{:<22}{:>8}{:>14}", "blobs", u.blobs, human(u.blobs_bytes));
            println!(
                "{:<22}{:>8}{:>14}",
                "extracted layers",
                u.layers,
                human(u.layers_bytes)
            );
            println!("Reclaimable:\t{}", human(u.unreferenced_bytes));
            println!("Total:\t\t{}", human(u.total_bytes));
            println!("Store:\t\t{}", s.root().display());
            Ok(())
        }
        CacheCommand::Prune {
            keep_storage,
            filter,
            all,
        } => {
            let keep_storage = keep_storage
                .map(|k| {
                    parse_size(&k).ok_or_else(|| {
                        usage(format!(
                            "invalid --keep-storage {k:?}: expected a size like 10GB"
                        ))
                    })
                })
                .transpose()?;
            let mut until = None;
            for f in &filter {
                match f.split_once('=') {
                    Some(("until", v)) => {
                        until = Some(parse_duration(v).ok_or_else(|| {
                            usage(format!(
                                "invalid filter {f:?}: expected until=DURATION like 24h"
                            ))
                        })?)
                    }
                    _ => {
                        return Err(usage(format!(
                            "unsupported filter {f:?}: only until=DURATION is supported"
                        )))
                    }
                }
            }
            let s = store()?;
            let r = s
                .prune(&PruneOptions {
                    keep_storage,
                    until,
                    all,
                })
                .map_err(|e| Error::Build(Box::new(e.into())))?;
            println!(
                "Removed {} cache records, {} blobs, {} extracted layers",
                r.records_removed, r.blobs_removed, r.layers_removed
            );
            println!("Total:\t{}", human(r.bytes_freed));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("10GB"), Some(10_000_000_000));
        assert_eq!(parse_size("1.5kb"), Some(1500));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_duration("24h"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_duration("h"), None);
        assert_eq!(human(999), "999B");
        assert_eq!(human(1_500_000), "1.500MB");
    }
}
