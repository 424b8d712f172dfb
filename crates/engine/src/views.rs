//! The JSON the Docker API returns for containers: inspect (`ContainerInspectResponse`) and
//! list entries (`ContainerSummary`).

use serde_json::{Value, json};

use crate::container::{Container, Status, docker_time};

fn network_settings(c: &Container) -> Value {
    let sandbox_key = if c.state.pid > 0 && c.host_config.network_mode != "host" {
        format!("/proc/{}/ns/net", c.state.pid)
    } else {
        String::new()
    };
    let mode = match c.host_config.network_mode.as_str() {
        "" | "default" => "bridge",
        m => m,
    };
    let mut networks = serde_json::Map::new();
    if matches!(mode, "none" | "host") {
        networks.insert(
            mode.to_string(),
            json!({
                "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
                "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
                "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "DriverOpts": null, "DNSNames": null,
            }),
        );
    }
    json!({
        "Bridge": "",
        "SandboxID": if sandbox_key.is_empty() { String::new() } else { c.id.clone() },
        "SandboxKey": sandbox_key,
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": {},
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": "",
        "Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "MacAddress": "",
        "Networks": networks,
    })
}

fn mounts(c: &Container) -> Value {
    Value::Array(
        c.mounts
            .iter()
            .map(|m| {
                json!({
                    "Type": m.kind,
                    "Source": m.source,
                    "Destination": m.destination,
                    "Mode": m.mode,
                    "RW": m.rw,
                    "Propagation": "rprivate",
                })
            })
            .collect(),
    )
}

/// `GET /containers/{id}/json`.
pub fn inspect(c: &Container) -> Value {
    let s = &c.state;
    let mut host_config = serde_json::to_value(&c.host_config).unwrap_or(Value::Null);
    if host_config.get("Tmpfs").is_some_and(Value::is_null)
        && let Some(o) = host_config.as_object_mut()
    {
        o.remove("Tmpfs");
    }
    let lower = c.rootfs.lower.join(":");
    json!({
        "Id": c.id,
        "Created": docker_time(Some(c.created)),
        "Path": c.path,
        "Args": c.args,
        "State": {
            "Status": s.status.as_str(),
            "Running": s.status.is_alive(),
            "Paused": s.status == Status::Paused,
            "Restarting": s.status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": s.status == Status::Dead,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": docker_time(s.started_at),
            "FinishedAt": docker_time(s.finished_at),
        },
        "Image": c.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": c.log_path,
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host_config,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": lower,
                "UpperDir": c.rootfs.upper,
                "WorkDir": c.rootfs.work,
                "MergedDir": c.rootfs.merged,
                "ID": c.id,
            },
        },
        "Mounts": mounts(c),
        "Config": c.config,
        "NetworkSettings": network_settings(c),
    })
}

/// One entry of `GET /containers/json`.
pub fn summary(c: &Container, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mode = match c.host_config.network_mode.as_str() {
        "" | "default" => "bridge",
        m => m,
    };
    json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.config.image,
        "ImageID": c.image_id,
        "Command": c.command_line(),
        "Created": c.created.timestamp(),
        "Ports": [],
        "Labels": c.config.labels.clone().unwrap_or_default(),
        "State": c.state.status.as_str(),
        "Status": c.status_text(now),
        "HostConfig": {"NetworkMode": mode},
        "NetworkSettings": {"Networks": network_settings(c)["Networks"].clone()},
        "Mounts": mounts(c),
    })
}
