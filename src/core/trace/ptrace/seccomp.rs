//! The seccomp-bpf filter installed in the traced command: only the syscalls
//! jailtrace records stop the tracee; everything else runs at native speed.

use crate::core::trace::arch::{self, Sys};
use crate::core::trace::decode;

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// The low and high 32-bit words of argument `i` (little-endian x86).
fn arg_lo(i: usize) -> u32 {
    OFF_ARGS + 8 * i as u32
}

fn arg_hi(i: usize) -> u32 {
    arg_lo(i) + 4
}

/// When a syscall of a table stops. Most always do; a few are common
/// without a path and stop only when an argument says there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Always,
    /// Argument `i` (a pointer) is not NULL.
    ArgNonZero(usize),
    /// Argument `i` is one of these values.
    ArgIn(usize, &'static [u32]),
}

const SOCKETCALL_WITH_ADDR: &[u32] = &[
    decode::SYS_BIND as u32,
    decode::SYS_CONNECT as u32,
    decode::SYS_SENDTO as u32,
    decode::SYS_SENDMSG as u32,
    decode::SYS_SENDMMSG as u32,
];

fn stop_rule(sys: Sys) -> Stop {
    match sys {
        // send() is sendto(fd, buf, len, flags, NULL, 0).
        Sys::Sendto => Stop::ArgNonZero(4),
        // futimens()/futimes() pass a NULL path.
        Sys::Utimensat | Sys::Futimesat => Stop::ArgNonZero(1),
        // A NULL path names nothing: with AT_EMPTY_PATH it is an fstat of
        // the descriptor (Linux 6.11+; libcs that pass NULL for fstat then
        // never stop), otherwise EFAULT. BPF cannot see an empty string,
        // only a NULL pointer.
        Sys::Newfstatat | Sys::Statx => Stop::ArgNonZero(1),
        // Every socket call of old i386 programs goes through socketcall.
        Sys::Socketcall => Stop::ArgIn(0, SOCKETCALL_WITH_ADDR),
        _ => Stop::Always,
    }
}

/// A jump target while the program is assembled.
#[derive(Debug, Clone, Copy)]
enum To {
    Next,
    Label(usize),
}

/// A minimal assembler with forward labels, so that the jump offsets of the
/// chains are computed rather than counted by hand.
#[derive(Default)]
struct Asm {
    code: Vec<(u16, u32, To, To)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.code.len());
    }

    fn stmt(&mut self, code: u16, k: u32) {
        self.code.push((code, k, To::Next, To::Next));
    }

    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.code.push((code, k, jt, jf));
    }

    fn finish(self) -> Vec<libc::sock_filter> {
        let offset = |pc: usize, to: To| -> u8 {
            match to {
                To::Next => 0,
                To::Label(l) => {
                    let target = self.labels[l].expect("every label is bound");
                    // BPF jumps go forward only, by at most 255 instructions.
                    target
                        .checked_sub(pc + 1)
                        .and_then(|d| u8::try_from(d).ok())
                        .expect("BPF jump backwards or out of range")
                }
            }
        };
        self.code
            .iter()
            .enumerate()
            .map(|(pc, &(code, k, jt, jf))| libc::sock_filter {
                code,
                jt: offset(pc, jt),
                jf: offset(pc, jf),
                k,
            })
            .collect()
    }
}

/// Emits the comparison chain of one architecture's table, starting with
/// the syscall number not yet loaded. `wide` says arguments are 64 bits.
fn chain(a: &mut Asm, table: &[(u32, Sys)], wide: bool, x32_check: bool) {
    let trace = a.label();
    let allow = a.label();
    a.stmt(BPF_LD_W_ABS, OFF_NR);
    if x32_check {
        // x32 calls come in with the native arch and a flag bit: they are
        // not decoded, but must stop so that the tracer can say so.
        a.jump(
            BPF_JSET_K,
            arch::X32_SYSCALL_BIT as u32,
            To::Label(trace),
            To::Next,
        );
    }
    let mut rules: Vec<(Stop, usize)> = Vec::new();
    for &(nr, sys) in table {
        let rule = stop_rule(sys);
        let target = if rule == Stop::Always {
            trace
        } else if let Some(&(_, l)) = rules.iter().find(|(r, _)| *r == rule) {
            l
        } else {
            let l = a.label();
            rules.push((rule, l));
            l
        };
        a.jump(BPF_JEQ_K, nr, To::Label(target), To::Next);
    }
    a.stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW);
    // The conditional blocks, which end at the shared returns below.
    for (rule, label) in rules {
        a.bind(label);
        match rule {
            Stop::Always => unreachable!("Always jumps straight to trace"),
            Stop::ArgNonZero(i) if wide => {
                a.stmt(BPF_LD_W_ABS, arg_lo(i));
                a.jump(BPF_JEQ_K, 0, To::Next, To::Label(trace));
                a.stmt(BPF_LD_W_ABS, arg_hi(i));
                a.jump(BPF_JEQ_K, 0, To::Label(allow), To::Label(trace));
            }
            // A 32-bit argument is the low word; the high one is not
            // guaranteed to be zero.
            Stop::ArgNonZero(i) => {
                a.stmt(BPF_LD_W_ABS, arg_lo(i));
                a.jump(BPF_JEQ_K, 0, To::Label(allow), To::Label(trace));
            }
            Stop::ArgIn(i, values) => {
                a.stmt(BPF_LD_W_ABS, arg_lo(i));
                for &v in values {
                    a.jump(BPF_JEQ_K, v, To::Label(trace), To::Next);
                }
                a.stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW);
            }
        }
    }
    a.bind(allow);
    a.stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW);
    a.bind(trace);
    a.stmt(BPF_RET_K, libc::SECCOMP_RET_TRACE);
}

/// Builds the filter: one comparison chain for the native architecture and
/// one for i386 compat calls, each stopping only on its table. x32 calls
/// and any other architecture are never killed or allowed blindly: every
/// one of their syscalls stops, and the tracer reports what it cannot
/// decode.
pub fn filter() -> Vec<libc::sock_filter> {
    let mut a = Asm::default();
    let native = a.label();
    let compat = a.label();
    a.stmt(BPF_LD_W_ABS, OFF_ARCH);
    a.jump(
        BPF_JEQ_K,
        arch::NATIVE_AUDIT_ARCH,
        To::Label(native),
        To::Next,
    );
    a.jump(
        BPF_JEQ_K,
        arch::COMPAT_AUDIT_ARCH,
        To::Label(compat),
        To::Next,
    );
    a.stmt(BPF_RET_K, libc::SECCOMP_RET_TRACE);
    a.bind(compat);
    chain(&mut a, arch::table(arch::COMPAT_AUDIT_ARCH), false, false);
    a.bind(native);
    chain(&mut a, arch::table(arch::NATIVE_AUDIT_ARCH), true, true);
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the subset we emit, to check the jump offsets.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = prog[pc];
            match ins.code {
                BPF_LD_W_ABS => {
                    acc = match ins.k {
                        OFF_NR => nr,
                        OFF_ARCH => arch,
                        k if (OFF_ARGS..OFF_ARGS + 48).contains(&k) => {
                            let word = args[((k - OFF_ARGS) / 8) as usize];
                            if (k - OFF_ARGS) % 8 == 0 {
                                word as u32
                            } else {
                                (word >> 32) as u32
                            }
                        }
                        k => panic!("unexpected load offset {k}"),
                    };
                    pc += 1;
                }
                BPF_JEQ_K => pc += 1 + if acc == ins.k { ins.jt } else { ins.jf } as usize,
                BPF_JSET_K => pc += 1 + if acc & ins.k != 0 { ins.jt } else { ins.jf } as usize,
                BPF_RET_K => return ins.k,
                c => panic!("unexpected opcode {c}"),
            }
        }
    }

    const TRACE: u32 = libc::SECCOMP_RET_TRACE;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

    /// What the filter must answer, from the tables and the rules.
    fn expected(arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let Some(sys) = arch::lookup(arch, u64::from(nr)) else {
            return ALLOW;
        };
        let wide = arch == arch::AUDIT_ARCH_X86_64;
        let arg = |i: usize| if wide { args[i] } else { args[i] & 0xffff_ffff };
        let stops = match stop_rule(sys) {
            Stop::Always => true,
            Stop::ArgNonZero(i) => arg(i) != 0,
            Stop::ArgIn(i, values) => values.iter().any(|&v| arg(i) == u64::from(v)),
        };
        if stops {
            TRACE
        } else {
            ALLOW
        }
    }

    #[test]
    fn traces_exactly_the_table() {
        let prog = filter();
        // Pointers with a zero low or high word, NULL, socketcall numbers.
        let probes: [u64; 6] = [0, 1, 3, 11, 0x7fff_0000_0000, 0xffff_ffff_0000_0000];
        for arch in [arch::AUDIT_ARCH_X86_64, arch::AUDIT_ARCH_I386] {
            let mut traced = 0;
            for nr in 0..600u32 {
                for &p in &probes {
                    let args = [p; 6];
                    let got = run(&prog, arch, nr, args);
                    assert_eq!(
                        got,
                        expected(arch, nr, args),
                        "arch {arch:#x} nr {nr} arg {p:#x}"
                    );
                    traced += u32::from(got == TRACE);
                }
            }
            assert!(traced > 50, "{traced}");
        }
        let i386_getppid = 64;
        assert_eq!(
            run(&prog, arch::AUDIT_ARCH_I386, i386_getppid, [0; 6]),
            ALLOW
        );
    }

    #[test]
    fn conditional_stops_look_at_the_right_argument() {
        let prog = filter();
        let x86 = arch::AUDIT_ARCH_X86_64;
        let i386 = arch::AUDIT_ARCH_I386;
        // sendto: only with a destination address, whichever word is set.
        assert_eq!(run(&prog, x86, 44, [3, 0x1000, 5, 0, 0, 0]), ALLOW);
        assert_eq!(
            run(&prog, x86, 44, [3, 0x1000, 5, 0, 0x7fff_0000_0000, 110]),
            TRACE
        );
        assert_eq!(run(&prog, x86, 44, [3, 0x1000, 5, 0, 0x1000, 110]), TRACE);
        assert_eq!(
            run(&prog, i386, 369, [3, 0x1000, 5, 0, 0x1_0000_0000, 0]),
            ALLOW
        );
        assert_eq!(run(&prog, i386, 369, [3, 0x1000, 5, 0, 0x2000, 110]), TRACE);
        // utimensat: a NULL path is futimens.
        assert_eq!(run(&prog, x86, 280, [3, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&prog, x86, 280, [3, 0x1000, 0, 0, 0, 0]), TRACE);
        // newfstatat and statx: a NULL path is an fstat, on both arches.
        let empty = libc::AT_EMPTY_PATH as u64;
        assert_eq!(run(&prog, x86, 262, [3, 0, 0x2000, empty, 0, 0]), ALLOW);
        assert_eq!(run(&prog, x86, 262, [3, 0x1000, 0x2000, 0, 0, 0]), TRACE);
        assert_eq!(run(&prog, x86, 332, [3, 0, empty, 0x7ff, 0x2000, 0]), ALLOW);
        assert_eq!(
            run(&prog, x86, 332, [3, 0x1000, 0, 0x7ff, 0x2000, 0]),
            TRACE
        );
        assert_eq!(run(&prog, i386, 300, [3, 0, 0x2000, empty, 0, 0]), ALLOW);
        assert_eq!(
            run(&prog, i386, 383, [3, 0x1000, 0, 0x7ff, 0x2000, 0]),
            TRACE
        );
        // socketcall: socket (1) and recv (10) run, connect (3) stops.
        for (call, want) in [(1, ALLOW), (2, TRACE), (3, TRACE), (10, ALLOW), (11, TRACE)] {
            assert_eq!(
                run(&prog, i386, 102, [call, 0x1000, 0, 0, 0, 0]),
                want,
                "call {call}"
            );
        }
    }

    #[test]
    fn x32_and_unknown_arches_always_stop() {
        let prog = filter();
        let x32_open = 2 | arch::X32_SYSCALL_BIT as u32;
        assert_eq!(run(&prog, arch::AUDIT_ARCH_X86_64, x32_open, [0; 6]), TRACE);
        let x32_getpid = 39 | arch::X32_SYSCALL_BIT as u32;
        assert_eq!(
            run(&prog, arch::AUDIT_ARCH_X86_64, x32_getpid, [0; 6]),
            TRACE
        );
        const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
        for nr in [0, 39, 110] {
            assert_eq!(run(&prog, AUDIT_ARCH_AARCH64, nr, [0; 6]), TRACE);
        }
    }
}
