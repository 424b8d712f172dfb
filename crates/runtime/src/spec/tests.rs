//! Spec generation without root: Docker's defaults and the effect of each option.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccompAction};

use super::*;
use crate::{Mount, Resources, Ulimit};

pub(crate) fn config() -> ContainerConfig {
    ContainerConfig {
        id: "c1".into(),
        rootfs: PathBuf::from("/rootfs"),
        readonly_rootfs: false,
        args: vec!["/bin/sh".into()],
        env: vec!["PATH=/bin".into()],
        cwd: PathBuf::from("/"),
        user: User::default(),
        hostname: "box".into(),
        tty: false,
        open_stdin: false,
        stdin_once: false,
        mounts: vec![],
        network: NetworkNamespace::New,
        cap_add: vec![],
        cap_drop: vec![],
        privileged: false,
        seccomp: true,
        no_new_privileges: false,
        resources: Resources::default(),
        ulimits: vec![],
        stop_signal: 15,
        log_path: PathBuf::from("/log"),
        cgroup_path: "berth/c1".into(),
        runtime: None,
        annotations: BTreeMap::new(),
    }
}

fn caps_of(spec: &Spec) -> Vec<String> {
    let caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.effective().as_ref())
        .expect("effective caps");
    let mut v: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

#[test]
fn defaults_match_docker() {
    let spec = container_spec(&config(), &HostFacts::default()).expect("spec");
    let linux = spec.linux().as_ref().expect("linux");
    let ns: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .as_ref()
        .expect("namespaces")
        .iter()
        .map(|n| n.typ())
        .collect();
    for t in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Cgroup,
    ] {
        assert!(ns.contains(&t), "{t:?} missing");
    }
    let dests: Vec<String> = spec
        .mounts()
        .as_ref()
        .expect("mounts")
        .iter()
        .map(|m| m.destination().display().to_string())
        .collect();
    for d in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
    ] {
        assert!(dests.contains(&d.to_string()), "{d} missing");
    }
    assert_eq!(caps_of(&spec).len(), 14);
    assert!(
        caps_of(&spec)
            .iter()
            .any(|c| c.contains("NET_BIND_SERVICE"))
    );
    assert!(
        linux
            .masked_paths()
            .as_ref()
            .expect("masked")
            .contains(&"/proc/kcore".to_string())
    );
    assert!(
        linux
            .readonly_paths()
            .as_ref()
            .expect("ro")
            .contains(&"/proc/sys".to_string())
    );
    let seccomp = linux.seccomp().as_ref().expect("seccomp");
    assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(spec.hostname().as_deref(), Some("box"));
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(std::path::Path::new("/berth/c1"))
    );
}

#[test]
fn seccomp_refuses_namespace_syscalls_without_sys_admin() {
    let caps = capability_set(false, &[], &[]).expect("caps");
    for name in [
        "unshare",
        "mount",
        "setns",
        "keyctl",
        "add_key",
        "reboot",
        "init_module",
    ] {
        assert!(!seccomp::allows(&caps, name), "{name} allowed");
    }
    for name in ["read", "execve", "clock_gettime", "socket", "wait4"] {
        assert!(seccomp::allows(&caps, name), "{name} refused");
    }
    let admin = capability_set(false, &["SYS_ADMIN".into()], &[]).expect("caps");
    assert!(seccomp::allows(&admin, "mount"));
    assert!(seccomp::allows(&admin, "unshare"));
    let profile = seccomp::default_profile(&caps);
    let text = profile.to_string();
    assert!(text.contains("SCMP_CMP_MASKED_EQ"));
    assert!(text.contains("\"errnoRet\":38"));
}

#[test]
fn cap_add_and_drop_follow_docker_rules() {
    let set = capability_set(false, &["NET_ADMIN".into()], &["CAP_CHOWN".into()]).expect("caps");
    assert!(set.contains("NET_ADMIN"));
    assert!(!set.contains("CHOWN"));
    let only = capability_set(false, &["net_raw".into()], &["ALL".into()]).expect("caps");
    assert_eq!(
        only.into_iter().collect::<Vec<_>>(),
        vec!["NET_RAW".to_string()]
    );
    let all_but = capability_set(false, &["ALL".into()], &["SYS_ADMIN".into()]).expect("caps");
    assert!(all_but.contains("SYS_MODULE"));
    assert!(!all_but.contains("SYS_ADMIN"));
    assert!(capability_set(false, &["BOGUS".into()], &[]).is_err());
    assert_eq!(
        capability_set(true, &[], &[]).expect("caps").len(),
        bounding_caps()
    );
}

/// How many of the 41 known capabilities this process' bounding set holds.
fn bounding_caps() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .expect("CapBnd");
    let bits = u64::from_str_radix(hex.trim(), 16).expect("hex");
    (bits & ((1u64 << 41) - 1)).count_ones() as usize
}

#[test]
fn privileged_has_all_caps_no_seccomp_no_masks_and_rw_sys() {
    let mut c = config();
    c.privileged = true;
    let spec = container_spec(&c, &HostFacts::probe(true)).expect("spec");
    let linux = spec.linux().as_ref().expect("linux");
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().as_ref().is_none_or(|m| m.is_empty()));
    assert_eq!(caps_of(&spec).len(), bounding_caps());
    let sys = spec
        .mounts()
        .as_ref()
        .expect("mounts")
        .iter()
        .find(|m| m.destination() == std::path::Path::new("/sys"))
        .expect("sys");
    assert!(
        sys.options()
            .as_ref()
            .expect("options")
            .contains(&"rw".to_string())
    );
    assert!(linux.devices().as_ref().is_some_and(|d| !d.is_empty()));
}

#[test]
fn resources_and_rlimits_are_translated_and_clamped() {
    let mut c = config();
    c.resources = Resources {
        memory: Some(64 << 20),
        nano_cpus: Some(1_500_000_000),
        pids_limit: Some(20),
        cpu_shares: Some(512),
        ..Resources::default()
    };
    c.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 1 << 30,
        hard: 1 << 30,
    }];
    let facts = HostFacts::probe(false);
    let spec = container_spec(&c, &facts).expect("spec");
    let res = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .expect("resources");
    let mem = res.memory().as_ref().expect("memory");
    assert_eq!(mem.limit(), Some(64 << 20));
    assert_eq!(mem.swap(), Some(128 << 20));
    let cpu = res.cpu().as_ref().expect("cpu");
    assert_eq!(cpu.quota(), Some(150_000));
    assert_eq!(cpu.period(), Some(100_000));
    assert_eq!(cpu.shares(), Some(512));
    assert_eq!(res.pids().as_ref().map(|p| p.limit()), Some(20));
    let rl = &spec
        .process()
        .as_ref()
        .and_then(|p| p.rlimits().as_ref())
        .expect("rlimits")[0];
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .expect("getrlimit");
    assert_eq!(rl.hard(), hard.min(1 << 30));
    assert!(rl.soft() <= rl.hard());
    c.ulimits[0].name = "bogus".into();
    assert!(container_spec(&c, &facts).is_err());
}

#[test]
fn user_mounts_replace_defaults_and_network_modes() {
    let mut c = config();
    c.mounts = vec![Mount {
        destination: PathBuf::from("/dev/shm"),
        kind: "bind".into(),
        source: PathBuf::from("/tmp/shm"),
        options: vec![],
    }];
    c.network = NetworkNamespace::Host;
    c.readonly_rootfs = true;
    c.user = User {
        uid: 1000,
        gid: 1000,
        additional_gids: vec![10],
    };
    let spec = container_spec(&c, &HostFacts::default()).expect("spec");
    let shm: Vec<_> = spec
        .mounts()
        .as_ref()
        .expect("mounts")
        .iter()
        .filter(|m| m.destination() == std::path::Path::new("/dev/shm"))
        .collect();
    assert_eq!(shm.len(), 1);
    assert_eq!(shm[0].typ().as_deref(), Some("bind"));
    assert!(
        shm[0]
            .options()
            .as_ref()
            .expect("opts")
            .contains(&"rbind".to_string())
    );
    let ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .expect("ns");
    assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    assert_eq!(spec.root().as_ref().and_then(|r| r.readonly()), Some(true));
    let user = spec.process().as_ref().expect("process").user();
    assert_eq!(user.uid(), 1000);
    assert_eq!(user.additional_gids().as_deref(), Some(&[10u32][..]));
}

#[test]
fn exec_process_overrides_env_user_and_cwd() {
    let c = config();
    let exec = ExecConfig {
        id: "e1".into(),
        args: vec!["env".into()],
        env: vec!["PATH=/usr/bin".into(), "X=1".into()],
        cwd: Some(PathBuf::from("/tmp")),
        user: Some(User {
            uid: 5,
            gid: 6,
            additional_gids: vec![],
        }),
        tty: true,
        open_stdin: false,
        privileged: false,
    };
    let p = exec_process(&c, &exec, &HostFacts::default()).expect("process");
    let env = p.env().as_ref().expect("env");
    assert!(env.contains(&"PATH=/usr/bin".to_string()));
    assert!(!env.contains(&"PATH=/bin".to_string()));
    assert!(env.contains(&"X=1".to_string()));
    assert_eq!(p.cwd(), std::path::Path::new("/tmp"));
    assert_eq!(p.user().uid(), 5);
    assert_eq!(p.terminal(), Some(true));
}
