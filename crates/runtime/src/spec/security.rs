//! Capabilities (Docker's default set, `cap_add`/`cap_drop`, privileged) and the paths Docker
//! masks or makes read-only in `/proc` and `/sys`.

use std::collections::BTreeSet;

use super::SpecError;

/// Docker's default capability set, without the `CAP_` prefix.
const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability the kernel knows (capability(7), up to CAP_CHECKPOINT_RESTORE = 40).
const ALL_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Paths Docker hides from unprivileged containers (a `/dev/null` bind or an empty tmpfs).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker remounts read-only in unprivileged containers.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default capabilities, without the `CAP_` prefix.
pub fn default_capabilities() -> &'static [&'static str] {
    DEFAULT_CAPS
}

fn normalize(cap: &str) -> Result<String, SpecError> {
    let upper = cap.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("CAP_").unwrap_or(&upper).to_string();
    if name == "ALL" || ALL_CAPS.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(SpecError::UnknownCapability(cap.to_string()))
    }
}

/// This process' capability bounding set (`CapBnd` of /proc/self/status), if readable.
fn bounding_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The effective capability set (names without `CAP_`) after applying Docker's rules:
/// privileged gets every capability; otherwise the default set, minus `cap_drop`, plus
/// `cap_add` (`ALL` in either list means every capability), with adds winning over drops of
/// the same name as in Docker.
pub fn capability_set(
    privileged: bool,
    cap_add: &[String],
    cap_drop: &[String],
) -> Result<BTreeSet<String>, SpecError> {
    // "All" is what this process may hand on: its bounding set (as Docker does), so that a
    // host without, say, CAP_SYS_RESOURCE can still run privileged containers.
    let bounding = bounding_set();
    let all: BTreeSet<String> = ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(bit, _)| bounding.is_none_or(|b| b & (1u64 << bit) != 0))
        .map(|(_, c)| c.to_string())
        .collect();
    if privileged {
        return Ok(all);
    }
    let add = cap_add
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>, _>>()?;
    let drop = cap_drop
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>, _>>()?;
    if add.iter().any(|c| c == "ALL") {
        // `--cap-add ALL --cap-drop X`: every capability except the dropped ones.
        let mut set = all;
        for c in &drop {
            set.remove(c);
        }
        return Ok(set);
    }
    let mut set: BTreeSet<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    if drop.iter().any(|c| c == "ALL") {
        set.clear();
    } else {
        for c in &drop {
            set.remove(c);
        }
    }
    set.extend(add);
    Ok(set)
}
