//! `.dockerignore` with Docker's rules: one pattern a line, `#` comments, patterns cleaned
//! and made relative, `*`/`?`/`[...]` within a path segment, `**` across any number of
//! segments, `!` re-including; the last matching pattern wins and a pattern matching a
//! directory matches everything below it.

/// One pattern.
#[derive(Debug, Clone)]
struct Pattern {
    segments: Vec<String>,
    exclusion: bool,
}

/// The parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

impl Ignore {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Self {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, p) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let segments: Vec<String> = clean(p);
            if segments.is_empty() {
                continue;
            }
            patterns.push(Pattern {
                segments,
                exclusion,
            });
        }
        Self { patterns }
    }

    /// Whether there are `!` patterns (then an excluded directory must still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether a context path (relative, `/`-separated) is excluded.
    pub fn excluded(&self, path: &str) -> bool {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut excluded = false;
        for p in &self.patterns {
            // The path or one of its parents matching counts (a directory pattern covers
            // everything inside it).
            let hit = (1..=segs.len()).any(|n| match_segments(&p.segments, &segs[..n]));
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether nothing is ever excluded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// `filepath.Clean` of a pattern, leading `/` dropped, as segments.
fn clean(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s.to_string()),
        }
    }
    out
}

fn match_segments(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((seg, prest)) => glob(first, seg) && match_segments(rest, prest),
            None => false,
        },
    }
}

/// `filepath.Match` of one segment: `*`, `?`, `[a-z]`, `[^x]`, `\` escapes.
pub fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| glob_at(&p[1..], &n[i..])),
        Some('?') => !n.is_empty() && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(&c) = n.first() else { return false };
            let Some(end) = p.iter().skip(1).position(|&x| x == ']').map(|e| e + 1) else {
                return c == '[' && glob_at(&p[1..], &n[1..]);
            };
            let class = &p[1..end];
            let (negate, class) = match class.first() {
                Some('^') | Some('!') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && glob_at(&p[end + 1..], &n[1..])
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && glob_at(&p[2..], &n[1..]),
        Some(&c) => n.first() == Some(&c) && glob_at(&p[1..], &n[1..]),
    }
}

/// Whether a source pattern has glob characters.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules() {
        let ig = Ignore::parse("# c\n*.log\n!keep.log\nbuild/\n**/*.tmp\n/secret\ndocs/**/*.md\n");
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("keep.log"));
        assert!(!ig.excluded("sub/a.log"));
        assert!(ig.excluded("build"));
        assert!(ig.excluded("build/x/y"));
        assert!(ig.excluded("x.tmp"));
        assert!(ig.excluded("a/b/c.tmp"));
        assert!(ig.excluded("secret"));
        assert!(ig.excluded("docs/a/b/c.md"));
        assert!(ig.excluded("docs/c.md"));
        assert!(!ig.excluded("docs/c.txt"));
        assert!(!ig.excluded("src/main.rs"));
    }

    #[test]
    fn globs() {
        assert!(glob("f*.txt", "foo.txt"));
        assert!(!glob("f*.txt", "foo.txz"));
        assert!(glob("[a-c]?", "bz"));
        assert!(!glob("[^a-c]?", "bz"));
        assert!(glob("a\\*", "a*"));
    }
}
