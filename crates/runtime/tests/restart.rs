//! The shim outlives the process that created the container: after that process is killed
//! with SIGKILL, a new `Runtime` on the same state directory still starts, inspects and waits
//! for the container, and after the shim exits the persisted exit record answers.

#[path = "support/fixture.rs"]
mod fixture;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use berth_runtime::{ContainerConfig, ContainerState, Runtime, RuntimeConfig, RuntimeKind};
use fixture::{Fixture, usable};

/// Environment variables that turn `helper_creates_then_hangs` into the creator process.
const HELPER_CONFIG: &str = "BERTH_TEST_HELPER_CONFIG";
const HELPER_STATE: &str = "BERTH_TEST_HELPER_STATE";

#[tokio::test]
#[ignore = "needs root"]
async fn shim_survives_sigkill_of_its_creator() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(RuntimeKind::Builtin);
    let cfg = fx.config(&["sh", "-c", "echo hi; exit 7"]);
    let cfg_path = fx.dir.path().join("helper-config.json");
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).expect("json")).expect("write");
    let state_dir = fx.runtime.config().state_dir.clone();
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "helper_creates_then_hangs",
            "--include-ignored",
            "--nocapture",
        ])
        .env(HELPER_CONFIG, &cfg_path)
        .env(HELPER_STATE, &state_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn helper");
    let out = child.stdout.take().expect("stdout");
    let created = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.trim() == "created");
    assert!(created, "helper did not create the container");
    let helper = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(helper, nix::sys::signal::Signal::SIGKILL).expect("kill helper");
    let _ = child.wait();

    let rt = Runtime::new(RuntimeConfig {
        state_dir,
        shim_binary: fx.runtime.config().shim_binary.clone(),
        default_runtime: RuntimeKind::Builtin,
    })
    .expect("runtime");
    assert!(matches!(
        rt.state(&cfg.id).await.expect("state"),
        ContainerState::Created { .. }
    ));
    assert_eq!(rt.list().await.expect("list"), vec![cfg.id.clone()]);
    rt.start(&cfg.id).await.expect("start");
    let status = rt.wait(&cfg.id).await.expect("wait");
    assert_eq!(status.code, 7);
    // Once every client is gone the shim exits; the record still answers.
    let mut state = rt.state(&cfg.id).await.expect("state");
    for _ in 0..100 {
        if !fx
            .runtime
            .config()
            .state_dir
            .join(&cfg.id)
            .join("shim.sock")
            .exists()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        state = rt.state(&cfg.id).await.expect("state");
    }
    assert!(matches!(state, ContainerState::Exited(s) if s.code == 7));
    assert_eq!(rt.wait(&cfg.id).await.expect("wait again").code, 7);
    let log = std::fs::read_to_string(&cfg.log_path).expect("log");
    assert!(log.contains("\"log\":\"hi\\n\""), "{log}");
    rt.delete(&cfg.id).await.expect("delete");
}

/// A shim whose creator is gone before it reports (the daemon killed mid-create) ends the
/// container it made and exits, instead of waiting forever for a start nobody will send.
#[test]
#[ignore = "needs root"]
fn shim_abandons_a_container_its_creator_never_heard_of() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(RuntimeKind::Builtin);
    let mut cfg = fx.config(&["sleep", "1000"]);
    cfg.runtime = Some(RuntimeKind::Builtin);
    let state_dir = fx.runtime.config().state_dir.clone();
    let layout = berth_runtime::layout::Layout::new(&state_dir, &cfg.id);
    std::fs::create_dir_all(layout.dir()).expect("state dir");
    std::fs::write(layout.config(), serde_json::to_vec(&cfg).expect("json")).expect("config");
    let mut shim = Command::new(env!("CARGO_BIN_EXE_berth-runtime-shim"))
        .args(["shim", "--state-dir"])
        .arg(&state_dir)
        .args(["--id", &cfg.id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn shim");
    // The creator's end of the report pipe closes before the shim has created anything.
    drop(shim.stdout.take());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = shim.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = shim.kill();
            let _ = shim.wait();
            panic!("the shim kept serving a container nobody knows of");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    assert!(!layout.socket().exists(), "control socket left behind");
    let root = layout
        .dir()
        .join(berth_runtime::layout::RUNTIME_ROOT)
        .join(&cfg.id);
    assert!(!root.exists(), "runtime state left at {}", root.display());
}

/// Not a test on its own: the creator process of `shim_survives_sigkill_of_its_creator`.
#[tokio::test]
#[ignore = "needs root"]
async fn helper_creates_then_hangs() {
    let (Some(cfg), Some(state)) = (
        std::env::var_os(HELPER_CONFIG),
        std::env::var_os(HELPER_STATE),
    ) else {
        return;
    };
    let cfg: ContainerConfig =
        serde_json::from_slice(&std::fs::read(cfg).expect("read config")).expect("config");
    let rt = Runtime::new(RuntimeConfig {
        state_dir: state.into(),
        shim_binary: env!("CARGO_BIN_EXE_berth-runtime-shim").into(),
        default_runtime: RuntimeKind::Builtin,
    })
    .expect("runtime");
    rt.create(&cfg).await.expect("create");
    println!("created");
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
}
