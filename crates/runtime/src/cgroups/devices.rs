//! Device rules on cgroup v2, which has no `devices.allow`: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the container's cgroup decides each open and
//! mknod of a device node. The program checks the rules from the last to the first and the
//! first match decides, which is what the v1 files do with rules written in order; nothing
//! matching is refused.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// `r_dst = *(u32 *)(r_src + off)`.
const fn load_word(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x61, dst, src, off, 0)
}
/// `w_dst &= imm`.
const fn and(dst: u8, imm: i32) -> Insn {
    insn(0x54, dst, 0, 0, imm)
}
/// `w_dst >>= imm`.
const fn shift_right(dst: u8, imm: i32) -> Insn {
    insn(0x74, dst, 0, 0, imm)
}
/// `w_dst = w_src`.
const fn mov_reg(dst: u8, src: u8) -> Insn {
    insn(0xbc, dst, src, 0, 0)
}
/// `r_dst = imm`.
const fn mov(dst: u8, imm: i32) -> Insn {
    insn(0xb7, dst, 0, 0, imm)
}
/// `if r_dst != imm goto pc + off`.
const fn jump_ne(dst: u8, imm: i32, off: i16) -> Insn {
    insn(0x55, dst, 0, off, imm)
}
const EXIT: Insn = insn(0x95, 0, 0, 0, 0);

/// `BPF_DEVCG_ACC_*` bits of an access string (`rwm`).
fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |bits, c| {
        bits | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

/// The program for `rules` (OCI device cgroup rules, in order).
fn program(rules: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    // The context is `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`,
    // access_type holding the access bits above the device type (1 block, 2 char).
    let mut out = vec![
        load_word(2, 1, 0),
        and(2, 0xffff),
        load_word(3, 1, 0),
        shift_right(3, 16),
        load_word(4, 1, 4),
        load_word(5, 1, 8),
    ];
    for rule in rules.iter().rev() {
        let mut checks: Vec<(u8, i32)> = Vec::new();
        let mut access_check = None;
        match rule.typ().unwrap_or_default() {
            LinuxDeviceType::B => checks.push((2, 1)),
            LinuxDeviceType::C | LinuxDeviceType::U => checks.push((2, 2)),
            _ => {}
        }
        let bits = access_bits(rule.access().as_deref().unwrap_or("rwm"));
        if bits != 7 {
            access_check = Some(!bits & 7);
        }
        if let Some(major) = rule.major().filter(|m| *m >= 0) {
            checks.push((4, i32::try_from(major).unwrap_or(i32::MAX)));
        }
        if let Some(minor) = rule.minor().filter(|m| *m >= 0) {
            checks.push((5, i32::try_from(minor).unwrap_or(i32::MAX)));
        }
        // The block: its checks, each jumping past the block on a mismatch, then the verdict.
        let len = checks.len() + access_check.map_or(0, |_| 3) + 2;
        let mut block = Vec::with_capacity(len);
        for (reg, value) in checks {
            let rest = len - block.len() - 1;
            block.push(jump_ne(reg, value, i16::try_from(rest).unwrap_or(i16::MAX)));
        }
        if let Some(outside) = access_check {
            // Refused bits requested: (access & ~allowed) != 0.
            block.push(mov_reg(1, 3));
            block.push(and(1, outside));
            let rest = len - block.len() - 1;
            block.push(jump_ne(1, 0, i16::try_from(rest).unwrap_or(i16::MAX)));
        }
        let matches_all = block.is_empty();
        block.push(mov(0, i32::from(rule.allow())));
        block.push(EXIT);
        out.extend(block);
        if matches_all {
            // Earlier rules cannot be reached (the verifier refuses unreachable code).
            return out;
        }
    }
    out.push(mov(0, 0));
    out.push(EXIT);
    out
}

/// `union bpf_attr` as BPF_PROG_LOAD reads it, zero-padded.
#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    _rest: [u64; 8],
}

/// `union bpf_attr` as BPF_PROG_ATTACH reads it, zero-padded.
#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _rest: [u32; 7],
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<i64> {
    // SAFETY: `attr` is a live, properly laid out `union bpf_attr` for `cmd`, of the size
    // passed; the kernel reads it (and may write into it) only during the call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc)
}

/// Loads the program for `rules` and attaches it to the cgroup2 directory `dir` (beside any
/// program its ancestors have: every one must allow).
pub fn attach(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let fail = |what: &str, source: std::io::Error| CgroupError::Write {
        path: dir.to_owned(),
        value: what.into(),
        source,
    };
    let insns = program(rules);
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..6].copy_from_slice(b"berth\0");
    let mut load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len()).unwrap_or(u32::MAX),
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: BPF_CGROUP_DEVICE,
        _rest: [0; 8],
    };
    let prog = bpf(BPF_PROG_LOAD, &mut load).map_err(|e| fail("load device program", e))?;
    let prog = i32::try_from(prog).map_err(|_| {
        fail(
            "load device program",
            std::io::Error::other("descriptor out of range"),
        )
    })?;
    // SAFETY: the kernel just returned this descriptor to us.
    let prog = unsafe { OwnedFd::from_raw_fd(prog) };
    let cgroup = std::fs::File::open(dir).map_err(|e| fail("open cgroup", e))?;
    let mut attach = ProgAttach {
        target_fd: u32::try_from(cgroup.as_raw_fd()).unwrap_or(u32::MAX),
        attach_bpf_fd: u32::try_from(prog.as_raw_fd()).unwrap_or(u32::MAX),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
        _rest: [0; 7],
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(|e| fail("attach device program", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(
        allow: bool,
        typ: Option<LinuxDeviceType>,
        major: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access(access);
        if let Some(t) = typ {
            b = b.typ(t);
        }
        if let Some(m) = major {
            b = b.major(m);
        }
        b.build().expect("rule")
    }

    /// Runs `prog` on a device access the way the kernel would (the few instructions the
    /// generator emits).
    fn run(prog: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | kind, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = (usize::from(i.regs & 0x0f), usize::from(i.regs >> 4));
            pc += 1;
            match i.code {
                0x61 => r[dst] = u64::from(ctx[usize::try_from(i.off).expect("off") / 4]),
                0x54 => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                0x74 => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                0xbc => r[dst] = r[src] as u32 as u64,
                0xb7 => r[dst] = i.imm as u64,
                0x55 => {
                    if r[dst] != i.imm as u64 {
                        pc += usize::try_from(i.off).expect("forward jump");
                    }
                }
                0x95 => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn dockers_default_rules_allow_the_default_devices_only() {
        let c = Some(LinuxDeviceType::C);
        let mut rules = vec![rule(false, None, None, "rwm")];
        rules.push(rule(true, c, None, "m"));
        rules.push(rule(true, Some(LinuxDeviceType::B), None, "m"));
        let mut null = rule(true, c, Some(1), "rwm");
        null.set_minor(Some(3));
        rules.push(null);
        rules.push(rule(true, c, Some(136), "rwm"));
        let prog = program(&rules);
        // /dev/null read and write; any pts; mknod of anything.
        assert_eq!(run(&prog, 2, 2, 1, 3), 1);
        assert_eq!(run(&prog, 2, 4, 1, 3), 1);
        assert_eq!(run(&prog, 2, 6, 136, 7), 1);
        assert_eq!(run(&prog, 1, 1, 8, 0), 1);
        // /dev/mem, a disk, a tun device: refused.
        assert_eq!(run(&prog, 2, 2, 1, 1), 0);
        assert_eq!(run(&prog, 1, 2, 8, 0), 0);
        assert_eq!(run(&prog, 2, 6, 10, 200), 0);
        // mknod is allowed, reading the node is not.
        assert_eq!(run(&prog, 2, 1, 10, 200), 1);
        assert_eq!(run(&prog, 2, 3, 10, 200), 0);
    }

    #[test]
    fn a_later_rule_overrides_an_earlier_one() {
        let c = Some(LinuxDeviceType::C);
        let rules = [
            rule(true, None, None, "rwm"),
            rule(false, c, Some(10), "rw"),
        ];
        let prog = program(&rules);
        assert_eq!(run(&prog, 2, 2, 10, 200), 0);
        assert_eq!(run(&prog, 2, 2, 1, 3), 1);
        assert_eq!(run(&prog, 2, 1, 10, 200), 1);
    }
}
