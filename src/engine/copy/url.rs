//! `ADD <url>`: downloads a remote file into memory, verifies `--checksum`, and names it
//! as BuildKit's Dockerfile frontend does (the last URL path segment, else `__unnamed__`);
//! mode 0600, mtime from `Last-Modified` when present.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::InlineSource;

/// A failed download.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("failed to download {url}: {message} (hint: check the URL and the network)")]
    Http { url: String, message: String },
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("unsupported --checksum {value:?} (hint: use sha256:<64 hex digits>)")]
    BadChecksum { value: String },
}

/// Whether an ADD source is a URL BuildKit downloads (an `http(s)://…/x.git` URL is a git
/// repository instead, see [`super::git`]).
pub fn is_url(source: &str) -> bool {
    (source.starts_with("http://") || source.starts_with("https://")) && !super::git::is_git(source)
}

/// The file name BuildKit's Dockerfile frontend gives a download: `path.Base` of the
/// URL's (decoded) path, or `__unnamed__` when that is `.` or `/` (no path) or the URL
/// does not parse. The frontend always passes this name to the HTTP source, so a
/// `Content-Disposition` header never renames the file.
pub fn file_name(url: &str) -> String {
    const UNNAMED: &str = "__unnamed__";
    let no_frag = url.split('#').next().unwrap_or(url);
    let no_query = no_frag.split('?').next().unwrap_or(no_frag);
    let raw_path = no_query
        .split_once("://")
        .map(|(_, rest)| rest.find('/').map_or("", |i| &rest[i..]))
        .unwrap_or("");
    let Some(path) = percent_decode(raw_path) else {
        return UNNAMED.to_string();
    };
    // Go's path.Base.
    let trimmed = path.trim_end_matches('/');
    let base = if path.is_empty() {
        "."
    } else if trimmed.is_empty() {
        "/"
    } else {
        trimmed.rsplit('/').next().unwrap_or(trimmed)
    };
    match base {
        "." | "/" => UNNAMED.to_string(),
        b => b.to_string(),
    }
}

/// `%XX` unescaping of a URL path, `None` for a malformed escape (as `url.Parse` fails).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Checks `bytes` against a `--checksum` value (`sha256:HEX`).
pub fn verify_checksum(url: &str, bytes: &[u8], checksum: &str) -> Result<(), DownloadError> {
    let bad = || DownloadError::BadChecksum {
        value: checksum.to_string(),
    };
    let hex_want = checksum.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex_want.len() != 64 || !hex_want.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let actual = hex::encode(Sha256::digest(bytes));
    if !actual.eq_ignore_ascii_case(hex_want) {
        return Err(DownloadError::Checksum {
            url: url.to_string(),
            expected: checksum.to_string(),
            actual: format!("sha256:{actual}"),
        });
    }
    Ok(())
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) to seconds since the epoch.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, _] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| x == mon)? as i64 + 1;
    let (d, y): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [hh, mm, ss] = t.as_slice() else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

/// Downloads `url` into memory as an [`InlineSource`] (mode 0600).
pub async fn download(url: &str, checksum: Option<&str>) -> Result<InlineSource, DownloadError> {
    let http = |message: String| DownloadError::Http {
        url: url.to_string(),
        message,
    };
    let resp = reqwest::get(url)
        .await
        .map_err(|e| http(e.to_string()))?
        .error_for_status()
        .map_err(|e| http(e.to_string()))?;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let name = file_name(url);
    let mtime = header("last-modified")
        .as_deref()
        .and_then(parse_http_date)
        .unwrap_or(0);
    let bytes = resp.bytes().await.map_err(|e| http(e.to_string()))?;
    if let Some(c) = checksum {
        verify_checksum(url, &bytes, c)?;
    }
    Ok(InlineSource {
        name,
        content: Arc::new(bytes.to_vec()),
        mode: 0o600,
        mtime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_dates_checksums() {
        assert_eq!(file_name("https://h/x/file.tgz?a=1"), "file.tgz");
        assert_eq!(file_name("https://h/x/dir/#frag"), "dir");
        assert_eq!(file_name("https://h/a%20b"), "a b");
        assert_eq!(file_name("https://h/"), "__unnamed__");
        assert_eq!(file_name("https://h"), "__unnamed__");
        assert_eq!(file_name("https://h/bad%zz"), "__unnamed__");
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        let sum = format!("sha256:{}", hex::encode(Sha256::digest(b"x")));
        assert!(verify_checksum("u", b"x", &sum).is_ok());
        assert!(matches!(
            verify_checksum("u", b"y", &sum),
            Err(DownloadError::Checksum { .. })
        ));
        assert!(verify_checksum("u", b"x", "md5:00").is_err());
        assert!(is_url("https://a/b") && !is_url("a.txt"));
        assert!(!is_url("https://a/b.git#main"));
    }
}
