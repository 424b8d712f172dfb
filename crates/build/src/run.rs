//! RUN: the command runs in a container of the build (a snapshot of the current image, the
//! network the builder was given: the host's by default), its output streamed as it comes; the container is always removed, and
//! the snapshot with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_image::ImageStore;
use berth_runtime::{ContainerConfig, NetworkNamespace, Resources, Runtime, User};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::UnboundedSender;

use crate::view::ImageView;
use crate::{BuildError, Progress};

/// Docker's default PATH when the image sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// argv.
    pub args: Vec<String>,
    /// `KEY=value`.
    pub env: Vec<String>,
    /// `USER` of the stage (empty: root).
    pub user: String,
    /// `WORKDIR` of the stage (empty: `/`).
    pub workdir: String,
    /// The network namespace RUN joins.
    pub network: NetworkNamespace,
}

/// Runs `spec` in a new container on `image`; returns the container id and the exit code.
/// On success the caller commits the container and then calls [`remove`].
pub async fn run(
    store: &Arc<ImageStore>,
    runtime: &Runtime,
    work: &Path,
    image: &str,
    spec: &RunSpec,
    out: &UnboundedSender<Progress>,
) -> Result<(String, i32), BuildError> {
    let id = hex::encode(rand::random::<[u8; 32]>());
    let (s, cid, iid) = (store.clone(), id.clone(), image.to_string());
    let snap = blocking(move || Ok(s.prepare_snapshot(&cid, &iid)?)).await;
    let snap = match snap {
        Ok(s) => s,
        Err(e) => {
            remove(store, runtime, &id).await;
            return Err(e);
        }
    };
    let _ = out.send(Progress::Stream(format!(
        " ---> Running in {}\n",
        &id[..12]
    )));
    let result = execute(runtime, work, &id, &snap.merged, spec, out).await;
    match result {
        Ok(code) => Ok((id, code)),
        Err(e) => {
            remove(store, runtime, &id).await;
            Err(e)
        }
    }
}

async fn execute(
    runtime: &Runtime,
    work: &Path,
    id: &str,
    rootfs: &Path,
    spec: &RunSpec,
    out: &UnboundedSender<Progress>,
) -> Result<i32, BuildError> {
    let view = ImageView::dirs(vec![rootfs.to_path_buf()]);
    let (user, home) = if spec.user.is_empty() {
        (User::default(), "/root".to_string())
    } else {
        let (uid, gid, home) = view.user_ids(&spec.user).map_err(BuildError::Syntax)?;
        (
            User {
                uid,
                gid,
                additional_gids: Vec::new(),
            },
            home.unwrap_or_else(|| "/".into()),
        )
    };
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    let config = ContainerConfig {
        id: id.to_string(),
        rootfs: rootfs.to_path_buf(),
        readonly_rootfs: false,
        args: spec.args.clone(),
        env,
        cwd: PathBuf::from(if spec.workdir.is_empty() {
            "/"
        } else {
            spec.workdir.as_str()
        }),
        user,
        hostname: id[..12].to_string(),
        tty: false,
        open_stdin: false,
        stdin_once: false,
        mounts: Vec::new(),
        network: spec.network.clone(),
        cap_add: Vec::new(),
        cap_drop: Vec::new(),
        privileged: false,
        seccomp: true,
        no_new_privileges: false,
        resources: Resources::default(),
        ulimits: Vec::new(),
        stop_signal: 15,
        log_path: work.join(format!("{id}-json.log")),
        cgroup_path: format!("berth/{id}"),
        runtime: None,
        annotations: BTreeMap::new(),
    };
    runtime.create(&config).await?;
    let streams = runtime.attach(id).await?;
    runtime.start(id).await?;
    let pump = |mut r: Box<dyn tokio::io::AsyncRead + Send + Unpin>| {
        let out = out.clone();
        async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let _ = out.send(Progress::Stream(
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                ));
            }
        }
    };
    let stdout = pump(streams.stdout);
    let stderr = async {
        if let Some(e) = streams.stderr {
            pump(e).await;
        }
    };
    tokio::join!(stdout, stderr);
    let status = runtime.wait(id).await?;
    let _ = std::fs::remove_file(&config.log_path);
    Ok(status.code)
}

/// Removes a build container and its snapshot; failures are logged, never fatal.
pub async fn remove(store: &Arc<ImageStore>, runtime: &Runtime, id: &str) {
    let _ = runtime.kill(id, 9).await;
    let _ = runtime.wait(id).await;
    if let Err(e) = runtime.delete(id).await
        && !matches!(e, berth_runtime::RuntimeError::NotFound(_))
    {
        tracing::warn!(container = %id, error = %e, "removing build container");
    }
    let (s, cid) = (store.clone(), id.to_string());
    if let Err(e) = blocking(move || Ok(s.remove_snapshot(&cid)?)).await {
        tracing::warn!(container = %id, error = %e, "removing build snapshot");
    }
}

/// Runs blocking work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BuildError> + Send + 'static,
) -> Result<T, BuildError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BuildError::Io(std::io::Error::other(format!("build task failed: {e}"))))?
}
