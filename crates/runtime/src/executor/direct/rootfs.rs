//! The container's filesystem, set up by its init process in its new mount namespace: the
//! rootfs bind, the spec's mounts, the default devices, the terminal, `pivot_root`, then the
//! masked and read-only paths and a read-only rootfs.
//!
//! Every path inside the rootfs is resolved with `openat2(RESOLVE_IN_ROOT)` from a handle on
//! the rootfs, so an image's symlink (`/proc -> /etc`) cannot send a mount to the host, and
//! each mount goes onto the resolved `/proc/self/fd/N`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mkdirat, mknodat};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use super::{Fail, HostCgroup};

/// One spec mount's options, split as mount(2) takes them.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Options {
    /// Flags to set.
    pub flags: MsFlags,
    /// A bind mount (`bind`), recursive with `rbind`.
    pub bind: Option<bool>,
    /// Propagation to apply afterwards (`rprivate`, `slave`, ...).
    pub propagation: MsFlags,
    /// Filesystem-specific data (`mode=755`, `size=64m`).
    pub data: Vec<String>,
}

impl Options {
    pub(super) fn parse(options: &[String]) -> Self {
        let mut out = Self {
            flags: MsFlags::empty(),
            bind: None,
            propagation: MsFlags::empty(),
            data: Vec::new(),
        };
        for o in options {
            let (set, clear) = match o.as_str() {
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "bind" => {
                    out.bind = Some(out.bind.unwrap_or(false));
                    continue;
                }
                "rbind" => {
                    out.bind = Some(true);
                    continue;
                }
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                | "unbindable" | "runbindable" => {
                    out.propagation = propagation(o);
                    continue;
                }
                // SELinux relabelling and Docker's copy-up have no meaning here.
                "z" | "Z" | "tmpcopyup" | "nocopy" | "defaults" => continue,
                _ => {
                    out.data.push(o.clone());
                    continue;
                }
            };
            out.flags.insert(set);
            out.flags.remove(clear);
        }
        out
    }
}

fn propagation(name: &str) -> MsFlags {
    let (base, rec) = match name.strip_prefix('r') {
        Some(b) => (b, MsFlags::MS_REC),
        None => (name, MsFlags::empty()),
    };
    rec | match base {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        _ => MsFlags::MS_UNBINDABLE,
    }
}

/// The rootfs being assembled: a handle on its directory.
pub(super) struct Rootfs {
    root: OwnedFd,
}

fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: every caller passes a descriptor the kernel just returned to this process.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The components of an absolute container path, without `/` and `.`.
fn relative(path: &Path) -> Result<PathBuf, Fail> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            _ => {
                return Err(Fail::new(format!(
                    "invalid container path {}",
                    path.display()
                )));
            }
        }
    }
    Ok(out)
}

impl Rootfs {
    /// Binds the rootfs at `path` onto itself (pivot_root needs a mount point of its own)
    /// after making every mount a slave of the host's, and opens it.
    pub(super) fn prepare(path: &Path) -> Result<Self, Fail> {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Fail::sys("make / a slave mount", e))?;
        mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Fail::sys(format!("bind rootfs {}", path.display()), e))?;
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Fail::sys(format!("open rootfs {}", path.display()), e))?;
        Ok(Self { root: own(fd) })
    }

    /// Opens `path` (relative to the rootfs) as an `O_PATH` handle, resolved inside it.
    fn resolve(&self, path: &Path) -> Result<OwnedFd, Errno> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        openat2(self.root.as_raw_fd(), path, how).map(own)
    }

    /// A handle on the mount point `dest`, made (directories, and an empty file when `file`)
    /// where missing.
    fn target(&self, dest: &Path, file: bool) -> Result<OwnedFd, Fail> {
        let rel = relative(dest)?;
        match self.resolve(&rel) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(Fail::sys(format!("resolve {}", dest.display()), e)),
        }
        let parts: Vec<_> = rel.components().collect();
        let mut cur = PathBuf::new();
        for (i, part) in parts.iter().enumerate() {
            let parent = self
                .resolve(&cur)
                .map_err(|e| Fail::sys(format!("resolve {}", dest.display()), e))?;
            let last = i + 1 == parts.len();
            let made = if last && file {
                nix::fcntl::openat(
                    Some(parent.as_raw_fd()),
                    part.as_os_str(),
                    OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                    Mode::from_bits_truncate(0o644),
                )
                .map(|fd| drop(own(fd)))
            } else {
                mkdirat(
                    Some(parent.as_raw_fd()),
                    part.as_os_str(),
                    Mode::from_bits_truncate(0o755),
                )
            };
            match made {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Fail::sys(format!("create {}", dest.display()), e)),
            }
            cur.push(part);
        }
        self.resolve(&rel)
            .map_err(|e| Fail::sys(format!("resolve {}", dest.display()), e))
    }

    /// Mounts one spec mount. `cgroups` are the host's hierarchies, for a `cgroup` mount.
    pub(super) fn mount(&self, m: &Mount, cgroups: &[HostCgroup]) -> Result<(), Fail> {
        let opts = Options::parse(m.options().as_deref().unwrap_or_default());
        let kind = m.typ().as_deref().unwrap_or("none");
        let dest = m.destination();
        if kind == "bind" || opts.bind.is_some() {
            return self.bind(m, &opts);
        }
        if kind == "cgroup" {
            return self.cgroup(dest, &opts, cgroups);
        }
        let target = self.target(dest, false)?;
        let data = opts.data.join(",");
        mount(
            m.source().as_deref().or(Some(Path::new(kind))),
            fd_path(&target).as_str(),
            Some(kind),
            opts.flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .map_err(|e| Fail::sys(format!("mount {kind} on {}", dest.display()), e))?;
        self.propagate(dest, &opts)
    }

    fn propagate(&self, dest: &Path, opts: &Options) -> Result<(), Fail> {
        if opts.propagation.is_empty() {
            return Ok(());
        }
        let target = self.target(dest, false)?;
        mount(
            None::<&str>,
            fd_path(&target).as_str(),
            None::<&str>,
            opts.propagation,
            None::<&str>,
        )
        .map_err(|e| Fail::sys(format!("set propagation of {}", dest.display()), e))
    }

    fn bind(&self, m: &Mount, opts: &Options) -> Result<(), Fail> {
        let dest = m.destination();
        let source = m
            .source()
            .as_deref()
            .ok_or_else(|| Fail::new(format!("bind mount on {} has no source", dest.display())))?;
        let file = std::fs::metadata(source)
            .map(|md| !md.is_dir())
            .map_err(|e| Fail::new(format!("bind source {}: {e}", source.display())))?;
        let target = self.target(dest, file)?;
        let target_path = fd_path(&target);
        let mut flags = MsFlags::MS_BIND;
        if opts.bind == Some(true) {
            flags |= MsFlags::MS_REC;
        }
        mount(
            Some(source),
            target_path.as_str(),
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(|e| {
            Fail::sys(
                format!("bind {} on {}", source.display(), dest.display()),
                e,
            )
        })?;
        if !opts.flags.is_empty() {
            // The bind's own flags take a remount; the target is the new mount now.
            let target = self.target(dest, file)?;
            mount(
                None::<&str>,
                fd_path(&target).as_str(),
                None::<&str>,
                opts.flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                None::<&str>,
            )
            .map_err(|e| Fail::sys(format!("remount {}", dest.display()), e))?;
        }
        self.propagate(dest, opts)
    }

    /// The container's view of the cgroup hierarchies, inside its cgroup namespace: cgroup2
    /// itself on a cgroup2-only host; otherwise a tmpfs with each v1 hierarchy (and the
    /// hybrid host's cgroup2 as `unified`) below it, plus a link for each co-mounted
    /// controller (`cpu -> cpu,cpuacct`).
    fn cgroup(&self, dest: &Path, opts: &Options, cgroups: &[HostCgroup]) -> Result<(), Fail> {
        let target = self.target(dest, false)?;
        if let [only] = cgroups
            && only.v2
        {
            return mount(
                Some("cgroup2"),
                fd_path(&target).as_str(),
                Some("cgroup2"),
                opts.flags,
                None::<&str>,
            )
            .map_err(|e| Fail::sys("mount cgroup2", e));
        }
        let base = opts.flags & !MsFlags::MS_RDONLY;
        mount(
            Some("tmpfs"),
            fd_path(&target).as_str(),
            Some("tmpfs"),
            base,
            Some("mode=755"),
        )
        .map_err(|e| Fail::sys("mount the cgroup tmpfs", e))?;
        let dir = self.target(dest, false)?;
        for h in cgroups {
            mkdirat(
                Some(dir.as_raw_fd()),
                h.name.as_str(),
                Mode::from_bits_truncate(0o755),
            )
            .map_err(|e| Fail::sys(format!("create cgroup directory {}", h.name), e))?;
            let sub = self.target(&dest.join(&h.name), false)?;
            let (fstype, data) = if h.v2 {
                ("cgroup2", None)
            } else {
                ("cgroup", Some(h.options.as_str()))
            };
            mount(
                Some(fstype),
                fd_path(&sub).as_str(),
                Some(fstype),
                opts.flags,
                data,
            )
            .map_err(|e| Fail::sys(format!("mount cgroup {}", h.name), e))?;
            if h.name.contains(',') {
                for part in h.name.split(',') {
                    let _ = nix::unistd::symlinkat(h.name.as_str(), Some(dir.as_raw_fd()), part);
                }
            }
        }
        if opts.flags.contains(MsFlags::MS_RDONLY) {
            mount(
                None::<&str>,
                fd_path(&dir).as_str(),
                None::<&str>,
                base | MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT,
                Some("mode=755"),
            )
            .map_err(|e| Fail::sys("remount the cgroup tmpfs read-only", e))?;
        }
        Ok(())
    }

    /// The devices every container has (`/dev/null`, `zero`, `full`, `random`, `urandom`,
    /// `tty`) and `/dev`'s usual links, on a `/dev` tmpfs.
    pub(super) fn default_devices(&self) -> Result<(), Fail> {
        let dev = self.target(Path::new("/dev"), false)?;
        for (name, major, minor) in [
            ("null", 1, 3),
            ("zero", 1, 5),
            ("full", 1, 7),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        ] {
            self.node(
                &dev,
                &Path::new("/dev").join(name),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                makedev(major, minor),
            )?;
        }
        for (name, to) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
            ("core", "/proc/kcore"),
        ] {
            match nix::unistd::symlinkat(to, Some(dev.as_raw_fd()), name) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Fail::sys(format!("link /dev/{name}"), e)),
            }
        }
        Ok(())
    }

    /// The spec's device nodes (a privileged container's: every host device), each with its
    /// owner and mode, in directories made where missing.
    pub(super) fn devices(&self, devices: &[LinuxDevice]) -> Result<(), Fail> {
        for d in devices {
            let path = d.path();
            let kind = match d.typ() {
                LinuxDeviceType::B => SFlag::S_IFBLK,
                LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
                LinuxDeviceType::P => SFlag::S_IFIFO,
                LinuxDeviceType::A => continue,
            };
            let (Some(parent), Some(_)) = (path.parent(), path.file_name()) else {
                continue;
            };
            let dir = self.target(parent, false)?;
            let mode = Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666) & 0o7777);
            let (major, minor) = (
                u64::try_from(d.major()).unwrap_or(0),
                u64::try_from(d.minor()).unwrap_or(0),
            );
            let node = self.node(&dir, path, kind, mode, makedev(major, minor))?;
            let _ = nix::unistd::chown(
                fd_path(&node).as_str(),
                d.uid().map(nix::unistd::Uid::from_raw),
                d.gid().map(nix::unistd::Gid::from_raw),
            );
        }
        Ok(())
    }

    /// Makes the device node `path` (an existing one stays) in its directory `dir`, with
    /// `mode` whatever the umask; a handle on it.
    fn node(
        &self,
        dir: &OwnedFd,
        path: &Path,
        kind: SFlag,
        mode: Mode,
        dev: libc::dev_t,
    ) -> Result<OwnedFd, Fail> {
        let name = path
            .file_name()
            .ok_or_else(|| Fail::new(format!("invalid device path {}", path.display())))?;
        match mknodat(Some(dir.as_raw_fd()), name, kind, mode, dev) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Fail::sys(format!("create {}", path.display()), e)),
        }
        let node = self.target(path, true)?;
        let _ = nix::sys::stat::fchmodat(
            None,
            fd_path(&node).as_str(),
            mode,
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        );
        Ok(node)
    }

    /// Opens a new terminal in the container's `/dev/pts`: the master and the slave, whose
    /// path inside the container is returned too. `/dev/console` becomes the slave.
    pub(super) fn terminal(&self) -> Result<(OwnedFd, OwnedFd), Fail> {
        let ptmx = self.target(Path::new("/dev/pts/ptmx"), false)?;
        let master = nix::fcntl::open(
            fd_path(&ptmx).as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Fail::sys("open the container's /dev/pts/ptmx", e))?;
        let master = own(master);
        let slave = super::open_slave(&master)?;
        let console = self.target(Path::new("/dev/console"), true)?;
        let slave_path = fd_path(&slave);
        mount(
            Some(slave_path.as_str()),
            fd_path(&console).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| Fail::sys("bind the terminal on /dev/console", e))?;
        Ok((master, slave))
    }

    /// Makes the rootfs the root (`pivot_root(".", ".")`, then detaches the old root).
    pub(super) fn pivot(&self) -> Result<(), Fail> {
        nix::unistd::fchdir(self.root.as_raw_fd()).map_err(|e| Fail::sys("enter rootfs", e))?;
        nix::unistd::pivot_root(".", ".").map_err(|e| Fail::sys("pivot_root", e))?;
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Fail::sys("make the old root a slave", e))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(|e| Fail::sys("detach the old root", e))?;
        nix::unistd::chdir("/").map_err(|e| Fail::sys("chdir /", e))
    }
}

/// After pivot_root: hides each masked path (a read-only empty tmpfs on a directory,
/// `/dev/null` on a file) and makes each read-only path so. Paths that do not exist are
/// skipped.
pub(super) fn protect(spec: &Spec) -> Result<(), Fail> {
    let linux = spec.linux().as_ref();
    for path in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        match mount(
            Some(path.as_str()),
            path.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Ok(()) => {}
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Fail::sys(format!("bind {path}"), e)),
        }
        let keep = nix::sys::statvfs::statvfs(path.as_str())
            .map(|s| mount_flags(s.flags()))
            .unwrap_or(MsFlags::empty());
        mount(
            None::<&str>,
            path.as_str(),
            None::<&str>,
            keep | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Fail::sys(format!("make {path} read-only"), e))?;
    }
    for path in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        let dir = match std::fs::metadata(path) {
            Ok(m) => m.is_dir(),
            Err(_) => continue,
        };
        let result = if dir {
            mount(
                Some("tmpfs"),
                path.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            mount(
                Some("/dev/null"),
                path.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        match result {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Fail::sys(format!("mask {path}"), e)),
        }
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let keep = nix::sys::statvfs::statvfs("/")
            .map(|s| mount_flags(s.flags()))
            .unwrap_or(MsFlags::empty());
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            keep | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| Fail::sys("make the rootfs read-only", e))?;
    }
    Ok(())
}

/// The per-mount flags of a statvfs result that a bind remount must repeat.
fn mount_flags(f: nix::sys::statvfs::FsFlags) -> MsFlags {
    use nix::sys::statvfs::FsFlags;
    let mut out = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> Options {
        Options::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_split_into_flags_bind_propagation_and_data() {
        let o = parse(&["nosuid", "noexec", "mode=1777", "size=65536k", "ro"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.data, ["mode=1777", "size=65536k"]);
        assert_eq!(o.bind, None);
        let b = parse(&["rbind", "rprivate", "ro", "rw"]);
        assert_eq!(b.bind, Some(true));
        assert_eq!(b.flags, MsFlags::empty());
        assert_eq!(b.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(parse(&["bind", "slave"]).bind, Some(false));
        assert_eq!(parse(&["slave"]).propagation, MsFlags::MS_SLAVE);
    }

    #[test]
    fn container_paths_stay_relative_and_refuse_dotdot() {
        assert_eq!(
            relative(Path::new("/dev/pts")).expect("path"),
            PathBuf::from("dev/pts")
        );
        assert!(relative(Path::new("/../etc")).is_err());
    }
}
