//! Docker's table output: columns padded like Go's tabwriter (minimum width 10, padding 3),
//! go-units human durations and sizes, and the truncations `docker ps` applies.

/// Prints rows (the first is the header) as Docker aligns them.
pub fn print(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count() + 3).max(10);
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(c);
                line.push_str(&" ".repeat(widths[i] - c.chars().count()));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// go-units `HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s / 60 < 60 => format!("{} minutes", s / 60),
        s => {
            let hours = (s as f64 / 3600.0 + 0.5) as i64;
            match hours {
                1 => "About an hour".into(),
                h if h < 48 => format!("{h} hours"),
                h if h < 24 * 14 => format!("{} days", h / 24),
                h if h < 24 * 60 => format!("{} weeks", h / 24 / 7),
                h if h < 24 * 730 => format!("{} months", h / 24 / 30),
                _ => format!("{} years", s / 3600 / 24 / 365),
            }
        }
    }
}

/// go-units `HumanSizeWithPrecision(size, 3)` (decimal units).
pub fn human_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    let text = format!("{s:.3}");
    let digits_before = text.split('.').next().map_or(1, str::len);
    let precision = 3usize.saturating_sub(digits_before);
    let mut t = format!("{s:.precision$}");
    if t.contains('.') {
        t = t.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{t}{}", UNITS[i])
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Seconds since a unix timestamp.
pub fn since(unix: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    now - unix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_match_docker() {
        assert_eq!(human_size(4_261_000.0), "4.26MB");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(12_000_000.0), "12MB");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(7200), "2 hours");
        assert_eq!(
            ellipsis("sh -c 'echo hello world'", 20),
            "sh -c 'echo hello w…"
        );
    }
}
