//! `docker top`: a `ps -ef` style table of a container's processes, read from /proc.

use serde_json::{Value, json};

fn clock_ticks() -> u64 {
    100
}

fn boot_time() -> i64 {
    std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

fn tty_name(nr: u64) -> String {
    if nr == 0 {
        return "?".into();
    }
    let major = (nr >> 8) & 0xfff;
    let minor = (nr & 0xff) | ((nr >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", minor + (major - 136) * 256),
        4 => format!("tty{minor}"),
        _ => "?".into(),
    }
}

/// One row for a pid, or `None` if it is gone.
pub fn process_row(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    let comm = stat.get(stat.find('(')? + 1..close)?.to_string();
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ppid = num(1);
    let tty = num(4);
    let cpu_secs = (num(11) + num(12)) / clock_ticks();
    let start = boot_time() + (num(19) / clock_ticks()) as i64;
    let stime = chrono::DateTime::from_timestamp(start, 0)
        .map(|t| t.with_timezone(&chrono::Local).format("%H:%M").to_string())
        .unwrap_or_default();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = if cmdline.is_empty() {
        format!("[{comm}]")
    } else {
        cmdline
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(vec![
        user_name(uid),
        pid.to_string(),
        ppid.to_string(),
        "0".into(),
        stime,
        tty_name(tty),
        format!(
            "{:02}:{:02}:{:02}",
            cpu_secs / 3600,
            (cpu_secs / 60) % 60,
            cpu_secs % 60
        ),
        cmd,
    ])
}

/// Docker's `ContainerTopResponse` for these pids.
pub fn table(pids: &[u32]) -> Value {
    let rows: Vec<Vec<String>> = pids.iter().filter_map(|p| process_row(*p)).collect();
    json!({
        "Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "Processes": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_has_a_row() {
        let row = process_row(std::process::id()).expect("row for self");
        assert_eq!(row[1], std::process::id().to_string());
        assert_eq!(row.len(), 8);
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name((136 << 8) | 3), "pts/3");
    }
}
