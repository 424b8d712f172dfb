//! ADD of a URL: a plain HTTP/1.0 GET (no TLS), the body saved as a file of mode 0600 named
//! after the URL's last path segment, as the classic builder does. Redirects are followed a
//! few times; any other status than 200 fails the step with Docker's wording.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::BuildError;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Largest body accepted (a bound on untrusted input).
const MAX_BODY: u64 = 4 << 30;

fn failed(url: &str, why: impl std::fmt::Display) -> BuildError {
    BuildError::Copy(format!("ADD failed: failed to GET {url}: {why}"))
}

/// The file name ADD gives a download: the URL path's last segment (`index.html`'s rule is
/// Docker's: an empty segment is an error).
pub fn file_name(url: &str) -> Result<String, BuildError> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let path = path.split(['?', '#']).next().unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or("");
    if name.is_empty() || name == "." || name == ".." {
        return Err(BuildError::Copy(format!(
            "ADD failed: cannot determine filename from url: {url}"
        )));
    }
    Ok(name.to_string())
}

/// Downloads `url` into `dir/<file name>`; returns the file's path.
pub fn download(url: &str, dir: &Path) -> Result<PathBuf, BuildError> {
    let name = file_name(url)?;
    fs::create_dir_all(dir)?;
    let target = dir.join(&name);
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        match get(&current, &target)? {
            None => {
                fs::set_permissions(&target, fs::Permissions::from_mode(0o600))?;
                return Ok(target);
            }
            Some(location) => current = location,
        }
    }
    Err(failed(url, "too many redirects"))
}

/// One GET; `Some(location)` for a redirect, `None` when the body was saved.
fn get(url: &str, target: &Path) -> Result<Option<String>, BuildError> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(failed(
            url,
            "only http:// URLs are supported by this builder",
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("/");
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut s = TcpStream::connect(&addr).map_err(|e| failed(url, e))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: berth-build\r\nAccept: */*\r\n\r\n"
    )
    .map_err(|e| failed(url, e))?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).map_err(|e| failed(url, e))?;
    let mut parts = status.trim_end().splitn(3, ' ');
    let _version = parts.next();
    let code: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| failed(url, "malformed HTTP response"))?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut location = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| failed(url, e))? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("location")
        {
            location = Some(v.trim().to_string());
        }
    }
    match code {
        200 => {
            let mut f = fs::File::create(target)?;
            let n = io::copy(&mut r.by_ref().take(MAX_BODY + 1), &mut f)?;
            if n > MAX_BODY {
                return Err(failed(url, "response body too large"));
            }
            f.sync_all()?;
            Ok(None)
        }
        301 | 302 | 303 | 307 | 308 => {
            let loc = location.ok_or_else(|| failed(url, "redirect without Location"))?;
            if loc.starts_with('/') {
                Ok(Some(format!("http://{authority}{loc}")))
            } else {
                Ok(Some(loc))
            }
        }
        _ => Err(BuildError::Copy(format!(
            "ADD failed: failed to GET {url} with status {code} {reason}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls() {
        assert_eq!(file_name("http://h/a/b.tar.gz?x=1").expect("n"), "b.tar.gz");
        assert!(file_name("http://h/").is_err());
        assert!(file_name("http://h").is_err());
    }
}
