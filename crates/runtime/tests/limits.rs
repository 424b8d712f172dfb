//! Resource and privilege limits of containers run by the built-in runtime: capabilities,
//! rlimits, memory (OOM kill), pids, freezing and live updates. They need root.

#[path = "support/fixture.rs"]
mod fixture;

use std::path::PathBuf;
use std::time::Duration;

use berth_runtime::{ContainerState, Resources, RuntimeKind, Ulimit};
use fixture::{Fixture, usable};

#[tokio::test]
#[ignore = "needs root"]
async fn cap_drop_removes_the_capability() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(RuntimeKind::Builtin);
    let mut cfg = fx.config(&[
        "sh",
        "-c",
        "chown 1000 /tmp && echo chown=ok; grep CapEff /proc/self/status",
    ]);
    cfg.cap_drop = vec!["CHOWN".into()];
    let (_, out, _) = fx.run(&cfg).await;
    assert!(!out.contains("chown=ok"), "{out}");
    let with = fx.config(&["sh", "-c", "chown 1000 /tmp && echo chown=ok"]);
    let (_, out, _) = fx.run(&with).await;
    assert_eq!(out, "chown=ok\n");
}

#[tokio::test]
#[ignore = "needs root"]
async fn ulimits_are_applied() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(RuntimeKind::Builtin);
    let mut cfg = fx.config(&["sh", "-c", "ulimit -n; ulimit -Hn"]);
    cfg.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 1024,
        hard: 2048,
    }];
    let (_, out, _) = fx.run(&cfg).await;
    assert_eq!(out, "1024\n2048\n");
}

#[tokio::test]
#[ignore = "needs root"]
async fn memory_limit_oom_kills_and_reports_it() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(RuntimeKind::Builtin);
    let mut cfg = fx.config(&["sh", "-c", "tail /dev/zero"]);
    cfg.resources = Resources {
        memory: Some(32 << 20),
        memory_swap: Some(32 << 20),
        ..Resources::default()
    };
    let (status, _, _) = fx.run(&cfg).await;
    assert_eq!(status.code, 137);
    assert!(status.oom_killed);
}

#[tokio::test]
#[ignore = "needs root"]
async fn pids_limit_contains_a_fork_bomb() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(RuntimeKind::Builtin);
    // The subshell forks until the kernel refuses; PID 1 then replaces itself without forking.
    let mut cfg = fx.config(&[
        "sh",
        "-c",
        "(while true; do sleep 30 & done) 2>/dev/null; exec sleep 30",
    ]);
    cfg.resources = Resources {
        pids_limit: Some(10),
        ..Resources::default()
    };
    fx.runtime.create(&cfg).await.expect("create");
    fx.runtime.start(&cfg.id).await.expect("start");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pids = fx.runtime.processes(&cfg.id).await.expect("processes");
    assert!(
        pids.len() >= 5 && pids.len() <= 10,
        "{} processes",
        pids.len()
    );
    let stats = fx.runtime.stats(&cfg.id).await.expect("stats");
    assert_eq!(stats.pids_limit, 10);
    assert!(stats.pids_current <= 10);
    assert!(stats.memory_usage > 0);
    fx.remove(&cfg.id).await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn pause_and_resume_freeze_the_container() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(RuntimeKind::Builtin);
    let cfg = fx.config(&["sleep", "100"]);
    fx.runtime.create(&cfg).await.expect("create");
    let pid = fx.runtime.start(&cfg.id).await.expect("start");
    fx.runtime.pause(&cfg.id).await.expect("pause");
    assert_eq!(
        fx.runtime.state(&cfg.id).await.expect("state"),
        ContainerState::Paused { pid }
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(
        stat.lines()
            .any(|l| l.starts_with("State:") && (l.contains('D') || l.contains('S')))
    );
    let freezer = PathBuf::from("/sys/fs/cgroup/freezer")
        .join(&cfg.cgroup_path)
        .join("freezer.state");
    if freezer.exists() {
        assert_eq!(
            std::fs::read_to_string(&freezer).expect("freezer").trim(),
            "FROZEN"
        );
    }
    fx.runtime.resume(&cfg.id).await.expect("resume");
    assert_eq!(
        fx.runtime.state(&cfg.id).await.expect("state"),
        ContainerState::Running { pid }
    );
    fx.remove(&cfg.id).await;
}

#[tokio::test]
#[ignore = "needs root"]
async fn update_changes_limits_of_a_running_container() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(RuntimeKind::Builtin);
    let mut cfg = fx.config(&["sleep", "100"]);
    cfg.resources.pids_limit = Some(50);
    fx.runtime.create(&cfg).await.expect("create");
    fx.runtime.start(&cfg.id).await.expect("start");
    let update = Resources {
        pids_limit: Some(20),
        memory: Some(100 << 20),
        memory_swap: Some(200 << 20),
        ..Resources::default()
    };
    fx.runtime.update(&cfg.id, &update).await.expect("update");
    let stats = fx.runtime.stats(&cfg.id).await.expect("stats");
    assert_eq!(stats.pids_limit, 20);
    assert_eq!(stats.memory_limit, 100 << 20);
    assert_eq!(stats.pids_current, 1);
    let pids = fx.runtime.processes(&cfg.id).await.expect("processes");
    assert_eq!(pids.len(), 1);
    fx.remove(&cfg.id).await;
}
