//! `GET /version` and `GET /info`: what the daemon and this machine are.

use serde_json::{Value, json};

use crate::container::Status;
use crate::engine::Engine;

/// API version the daemon speaks.
pub const API_VERSION: &str = "1.47";
/// Oldest API version accepted.
pub const MIN_API_VERSION: &str = "1.24";
/// Version of berth reported as the engine version.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Kernel release (`uname -r`).
pub fn kernel_version() -> String {
    read_trim("/proc/sys/kernel/osrelease")
}

/// `"2"` on a unified hierarchy, else `"1"` (also for hybrid layouts).
pub fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

fn os_pretty_name() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim_matches('"').to_string())
    };
    field("PRETTY_NAME=").unwrap_or_else(|| "Linux".into())
}

fn os_version() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_ID="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default()
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "x86_64"),
        "aarch64" => ("arm64", "aarch64"),
        other => (other, other),
    }
}

/// `GET /version`.
pub fn version() -> Value {
    let (goarch, _) = arch();
    let details = json!({
        "ApiVersion": API_VERSION,
        "Arch": goarch,
        "BuildTime": "",
        "Experimental": "false",
        "GitCommit": "berth",
        "GoVersion": "rust",
        "KernelVersion": kernel_version(),
        "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux",
    });
    json!({
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": details}],
        "Version": ENGINE_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "berth",
        "GoVersion": "rust",
        "Os": "linux",
        "Arch": goarch,
        "KernelVersion": kernel_version(),
        "BuildTime": "",
    })
}

impl Engine {
    /// `GET /info`.
    pub async fn info(&self) -> Value {
        let containers = self.containers();
        let count = |f: fn(Status) -> bool| containers.iter().filter(|c| f(c.state.status)).count();
        let running = count(|s| s == Status::Running);
        let paused = count(|s| s == Status::Paused);
        let images = self.with_images(|s| Ok(s.list()?.len())).await.unwrap_or(0);
        let runtimes: serde_json::Map<String, Value> = crate::runtimes::available()
            .into_iter()
            .map(|(n, p)| (n, json!({"path": p})))
            .collect();
        let (_, machine) = arch();
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        json!({
            "ID": "berth",
            "Containers": containers.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": containers.len() - running - paused,
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
            "Plugins": {"Volume": ["local"], "Network": ["host", "null"], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true,
            "SwapLimit": true,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "IPv4Forwarding": true,
            "Debug": false,
            "NFd": std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
            "OomKillDisable": cgroup_version() == "1",
            "NGoroutines": 0,
            "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "NEventsListener": self.events.listeners(),
            "KernelVersion": kernel_version(),
            "OperatingSystem": os_pretty_name(),
            "OSVersion": os_version(),
            "OSType": "linux",
            "Architecture": machine,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": null, "AllowNondistributableArtifactsHostnames": null, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": null},
            "NCPU": ncpu,
            "MemTotal": mem_total(),
            "GenericResources": null,
            "DockerRootDir": self.config.root.display().to_string(),
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": read_trim("/proc/sys/kernel/hostname"),
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": ENGINE_VERSION,
            "Runtimes": runtimes,
            "DefaultRuntime": self.config.default_runtime,
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": ""},
            "InitCommit": {"ID": ""},
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
            "CDISpecDirs": [],
            "Warnings": null,
        })
    }
}
