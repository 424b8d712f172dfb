//! A container as the engine records it: Docker's `Config` and `HostConfig`, the resolved
//! image, and its `State`. This is what is persisted under `<root>/containers/<id>/`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Config, HostConfig};

/// Docker's `State.Status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or start failed).
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    /// Docker's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }

    /// The process is alive (running or paused).
    pub fn is_alive(self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }
}

/// Docker's container `State`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: u32,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub error: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A container's filesystem paths (overlay2's GraphDriver data).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rootfs {
    pub lower: Vec<String>,
    pub upper: String,
    pub work: String,
    pub merged: String,
}

/// One entry of inspect's `Mounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    pub kind: String,
    pub source: String,
    pub destination: String,
    pub mode: String,
    pub rw: bool,
}

/// The persisted record of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// 64 hex characters.
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    pub created: DateTime<Utc>,
    /// `sha256:<hex>` of the image.
    pub image_id: String,
    /// The image as the user wrote it (`Config.Image`).
    pub config: Config,
    pub host_config: HostConfig,
    /// Executable and its arguments (entrypoint and cmd combined).
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    pub rootfs: Rootfs,
    pub mounts: Vec<MountPoint>,
    pub log_path: String,
    pub restart_count: u32,
    /// Stopped by the user (`stop`, `kill`); restart policies then leave it alone.
    pub manually_stopped: bool,
    /// Ever started (for `unless-stopped` and daemon-restart decisions).
    pub has_been_started: bool,
}

impl Container {
    /// First 12 characters of the id.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// The command as `docker ps` shows it (`"sh -c 'exit 3'"` is shown unquoted).
    pub fn command_line(&self) -> String {
        let mut parts = vec![self.path.clone()];
        parts.extend(self.args.iter().cloned());
        parts.join(" ")
    }

    /// Docker's `Status` column text: `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`.
    pub fn status_text(&self, now: DateTime<Utc>) -> String {
        let since = |t: Option<DateTime<Utc>>| {
            t.map(|t| human_duration(now.signed_duration_since(t)))
                .unwrap_or_else(|| human_duration(chrono::Duration::zero()))
        };
        match self.state.status {
            Status::Created => "Created".into(),
            Status::Running => format!("Up {}", since(self.state.started_at)),
            Status::Paused => format!("Up {} (Paused)", since(self.state.started_at)),
            Status::Restarting => format!(
                "Restarting ({}) {} ago",
                self.state.exit_code,
                since(self.state.finished_at)
            ),
            Status::Removing => "Removal In Progress".into(),
            Status::Exited => {
                if self.state.finished_at.is_none() {
                    return "Created".into();
                }
                format!(
                    "Exited ({}) {} ago",
                    self.state.exit_code,
                    since(self.state.finished_at)
                )
            }
            Status::Dead => "Dead".into(),
        }
    }
}

/// go-units' `HumanDuration`, which the docker CLI and daemon use in listings.
pub fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = d.num_minutes();
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d.num_seconds() as f64 / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", d.num_hours() / 24 / 365)
}

/// RFC 3339 with nanoseconds as Docker prints times; the zero time for `None`.
pub fn docker_time(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_go_units() {
        let s = chrono::Duration::seconds;
        assert_eq!(human_duration(s(0)), "Less than a second");
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(42)), "42 seconds");
        assert_eq!(human_duration(s(65)), "About a minute");
        assert_eq!(human_duration(s(600)), "10 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5 * 3600)), "5 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
    }

    #[test]
    fn zero_time_is_docker_zero() {
        assert_eq!(docker_time(None), "0001-01-01T00:00:00Z");
    }
}
