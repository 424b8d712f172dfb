//! `POST /containers/create`: validating the request, merging the image's defaults into the
//! container's `Config`, preparing the snapshot and persisting the record. A container is
//! visible only once its record is on disk.

use std::sync::Arc;

use berth_image::Image;

use crate::container::{Container, MountPoint, Rootfs, State};
use crate::engine::{Engine, Entry};
use crate::error::{EngineError, Result};
use crate::model::{Config, CreateRequest, HostConfig};
use crate::names;

/// Default `PATH` when neither the image nor the user sets one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Fills `config` from the image's defaults as dockerd does (`merge` in daemon/commit.go).
pub fn merge_image_defaults(config: &mut Config, image: &Image) {
    let Some(d) = image.config.config.as_ref() else {
        if config
            .env
            .as_ref()
            .is_none_or(|e| !e.iter().any(|v| v.starts_with("PATH=")))
        {
            config
                .env
                .get_or_insert_with(Vec::new)
                .insert(0, DEFAULT_PATH.into());
        }
        return;
    };
    if config.user.is_empty() {
        config.user = d.user.clone().unwrap_or_default();
    }
    // Image env first; the user's values win for the same key.
    let mut env: Vec<String> = d.env.clone().unwrap_or_default();
    for e in config.env.take().unwrap_or_default() {
        let key = e.split('=').next().unwrap_or_default().to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(e);
    }
    if !env.iter().any(|v| v.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.into());
    }
    config.env = Some(env);
    let entrypoint_empty = config.entrypoint.as_ref().is_none_or(|e| e.is_empty());
    if entrypoint_empty {
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            config.cmd = d.cmd.clone();
        }
        if config.entrypoint.is_none() {
            config.entrypoint = d.entrypoint.clone();
        }
    }
    if config.working_dir.is_empty() {
        config.working_dir = d.working_dir.clone().unwrap_or_default();
    }
    if let Some(ports) = &d.exposed_ports {
        let mine = config.exposed_ports.get_or_insert_with(Default::default);
        for (k, v) in ports {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(vols) = &d.volumes {
        let mine = config.volumes.get_or_insert_with(Default::default);
        for (k, v) in vols {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(labels) = &d.labels {
        let mine = config.labels.get_or_insert_with(Default::default);
        for (k, v) in labels {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if config.stop_signal.is_none() {
        config.stop_signal = d.stop_signal.clone();
    }
}

/// Path and args from entrypoint and cmd; empty strings of `--entrypoint ""` are dropped.
pub fn command(config: &Config) -> Result<(String, Vec<String>)> {
    let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
    argv.retain(|a| !a.is_empty());
    argv.extend(config.cmd.clone().unwrap_or_default());
    if argv.is_empty() {
        return Err(EngineError::InvalidArgument("no command specified".into()));
    }
    let path = argv.remove(0);
    Ok((path, argv))
}

/// Checks host options Docker rejects at create time.
pub fn validate_host_config(hc: &HostConfig) -> Result<()> {
    let policy = hc.restart_policy.name.as_str();
    match policy {
        "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
        other => {
            return Err(EngineError::InvalidArgument(format!(
                "invalid restart policy '{other}'"
            )));
        }
    }
    if hc.restart_policy.maximum_retry_count < 0 {
        return Err(EngineError::InvalidArgument(
            "invalid restart policy: maximum retry count cannot be negative".into(),
        ));
    }
    if hc.restart_policy.maximum_retry_count > 0 && policy != "on-failure" {
        return Err(EngineError::InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'".into(),
        ));
    }
    if hc.auto_remove && !matches!(policy, "" | "no") {
        return Err(EngineError::InvalidArgument(
            "can't create 'AutoRemove' container with restart policy".into(),
        ));
    }
    if hc.memory < 0 || hc.nano_cpus < 0 || hc.cpu_shares < 0 {
        return Err(EngineError::InvalidArgument(
            "invalid resource limit: negative value".into(),
        ));
    }
    if hc.memory > 0 && hc.memory < 6 * 1024 * 1024 {
        return Err(EngineError::InvalidArgument(
            "Minimum memory limit allowed is 6MB".into(),
        ));
    }
    if hc.memory_swap > 0 && hc.memory > 0 && hc.memory_swap < hc.memory {
        return Err(EngineError::InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        ));
    }
    if hc.nano_cpus > 0 && (hc.cpu_quota > 0 || hc.cpu_period > 0) {
        return Err(EngineError::InvalidArgument(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
        ));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    if hc.nano_cpus > cpus * 1_000_000_000 {
        return Err(EngineError::InvalidArgument(format!(
            "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        )));
    }
    for b in hc.binds.iter().flatten() {
        crate::mounts::parse_bind(b)?;
    }
    for dst in hc.tmpfs.iter().flat_map(|t| t.keys()) {
        if !dst.starts_with('/') {
            return Err(EngineError::InvalidArgument(format!(
                "invalid mount config for type \"tmpfs\": invalid mount path: '{dst}' mount path must be absolute"
            )));
        }
    }
    Ok(())
}

impl Engine {
    /// Creates a container; returns its id and warnings.
    pub async fn create(
        self: &Arc<Self>,
        name: Option<&str>,
        request: CreateRequest,
    ) -> Result<(String, Vec<String>)> {
        let mut config = request.config;
        let mut host_config = request.host_config.unwrap_or_default();
        if config.image.is_empty() {
            return Err(EngineError::InvalidArgument(
                "config cannot be empty in order to create a container".into(),
            ));
        }
        validate_host_config(&host_config)?;
        crate::runtimes::resolve(&host_config.runtime)?;
        if host_config.network_mode.is_empty() {
            host_config.network_mode = "bridge".into();
        }
        let plan = self.net_plan(&host_config, request.networking_config.as_ref())?;
        let wanted = config.image.clone();
        let image = self
            .with_images(move |s| Ok(s.resolve(&wanted)?))
            .await
            .map_err(|e| match e {
                EngineError::Image(berth_image::ImageError::NotFound(_)) => {
                    let mut n = config.image.clone();
                    if !n.contains(':') && !n.contains('@') && !n.starts_with("sha256") {
                        n.push_str(":latest");
                    }
                    EngineError::NotFound(format!("No such image: {n}"))
                }
                other => other,
            })?;
        merge_image_defaults(&mut config, &image);
        let (path, args) = command(&config)?;
        if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
            return Err(EngineError::InvalidArgument(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                config.working_dir
            )));
        }
        let id = names::new_id();
        if config.hostname.is_empty() {
            config.hostname = if host_config.network_mode == "host" {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_default()
            } else {
                id[..12].to_string()
            };
        }
        let name = self.reserve_name(name, &id)?;
        // The network attachments and the container's record are each synced; writing them
        // side by side lets the filesystem commit both in one journal flush.
        let attach = {
            let engine = self.clone();
            let id = id.clone();
            tokio::task::spawn_blocking(move || engine.net.set_attachments(&id, Some(plan)))
        };
        let created = self
            .finish_create(&id, &name, config, host_config, path, args, &image)
            .await;
        let attached = attach
            .await
            .unwrap_or_else(|e| Err(EngineError::Internal(format!("saving attachments: {e}"))));
        match attached.and(created) {
            Ok(c) => {
                let entry = Entry::new(c.clone());
                self.registry().by_id.insert(id.clone(), entry);
                self.container_event(&c, "create", &[], None);
                tracing::info!(container = %id, name = %name, "created");
                Ok((id, Vec::new()))
            }
            Err(e) => {
                self.registry().names.remove(&name);
                let cid = id.clone();
                let _ = self
                    .with_images(move |s| Ok(s.remove_snapshot(&cid)?))
                    .await;
                let _ = self.store.finish_remove(&id);
                let _ = self.net.set_attachments(&id, None);
                Err(e)
            }
        }
    }

    fn reserve_name(&self, name: Option<&str>, id: &str) -> Result<String> {
        let mut reg = self.registry();
        match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = names::validate(n)?;
                if let Some(other) = reg.names.get(&n) {
                    return Err(EngineError::Conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    )));
                }
                reg.names.insert(n.clone(), id.to_string());
                Ok(n)
            }
            None => {
                for retry in 0..100 {
                    let n = names::generate(retry);
                    if !reg.names.contains_key(&n) {
                        reg.names.insert(n.clone(), id.to_string());
                        return Ok(n);
                    }
                }
                Err(EngineError::Internal(
                    "could not generate a unique name".into(),
                ))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_create(
        &self,
        id: &str,
        name: &str,
        config: Config,
        host_config: HostConfig,
        path: String,
        args: Vec<String>,
        image: &Image,
    ) -> Result<Container> {
        let dir = self.store.create_dir(id)?;
        let mut mounts: Vec<MountPoint> = crate::mounts::mount_points(&host_config)?;
        mounts.extend(self.volume_points(&config, &host_config, &mounts)?);
        let (cid, iid) = (id.to_string(), image.id.clone());
        let snap = self
            .with_images(move |s| Ok(s.prepare_snapshot(&cid, &iid)?))
            .await?;
        let log_path = dir.join(format!("{id}-json.log"));
        let container = Container {
            id: id.to_string(),
            name: name.to_string(),
            created: chrono::Utc::now(),
            image_id: image.id.clone(),
            config,
            host_config,
            path,
            args,
            state: State::default(),
            rootfs: Rootfs {
                lower: snap.lower.iter().map(|p| p.display().to_string()).collect(),
                upper: snap.upper.display().to_string(),
                work: snap.work.display().to_string(),
                merged: snap.merged.display().to_string(),
            },
            mounts,
            log_path: log_path.display().to_string(),
            restart_count: 0,
            manually_stopped: false,
            has_been_started: false,
        };
        self.store.save(&container)?;
        Ok(container)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::{ContainerDefaults, ImageConfig};

    fn image(defaults: ContainerDefaults) -> Image {
        Image {
            id: "sha256:1".into(),
            config: ImageConfig {
                config: Some(defaults),
                ..Default::default()
            },
            tags: vec![],
            digests: vec![],
            parent: None,
            size: 0,
            created: chrono::Utc::now(),
        }
    }

    #[test]
    fn merges_like_dockerd() {
        let img = image(ContainerDefaults {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            working_dir: Some("/w".into()),
            ..Default::default()
        });
        let mut c = Config {
            env: Some(vec!["A=2".into()]),
            ..Default::default()
        };
        merge_image_defaults(&mut c, &img);
        assert_eq!(c.env, Some(vec!["PATH=/bin".into(), "A=2".into()]));
        assert_eq!(command(&c).expect("cmd"), ("sh".to_string(), vec![]));
        assert_eq!(c.working_dir, "/w");

        let mut c = Config {
            entrypoint: Some(vec!["echo".into()]),
            ..Default::default()
        };
        merge_image_defaults(&mut c, &img);
        assert_eq!(command(&c).expect("cmd"), ("echo".to_string(), vec![]));
    }

    #[test]
    fn rejects_bad_host_options() {
        let mut hc = HostConfig {
            auto_remove: true,
            ..Default::default()
        };
        hc.restart_policy.name = "always".into();
        assert_eq!(validate_host_config(&hc).map_err(|e| e.status()), Err(400));
        let hc = HostConfig {
            memory: 1024,
            ..Default::default()
        };
        assert!(validate_host_config(&hc).is_err());
    }
}
