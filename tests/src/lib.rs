//! Harness for berth's end-to-end tests: locating the built binary, starting daemons in
//! temporary roots, running the real docker CLI and Python SDK against them, and building
//! fixture images from Debian's static busybox.

pub mod daemon;
pub mod fixtures;
pub mod http;
pub mod kube;
pub mod registry;

pub use daemon::Daemon;

/// Polls `check` every 100 ms until it holds or `timeout` passes; whether it held.
pub fn eventually(timeout: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    check()
}

/// Path of the static busybox the fixtures are built from.
pub const BUSYBOX: &str = "/bin/busybox";

/// Environment variable naming the `berth` binary under test.
pub const BERTH_BIN_ENV: &str = "BERTH_BIN";

/// The `berth` binary: `$BERTH_BIN`, else `<dir of the test executable>/../berth`.
pub fn berth_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os(BERTH_BIN_ENV) {
        return p.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().expect("test executable has a directory");
    let candidate = dir.join("../berth");
    assert!(
        candidate.exists(),
        "berth binary not found at {} (build it with `cargo build -p berth` or set BERTH_BIN)",
        candidate.display()
    );
    candidate
}

/// True when running as root (tests needing root are `#[ignore]`d otherwise).
pub fn is_root() -> bool {
    // SAFETY: getuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::getuid() };
    uid == 0
}
