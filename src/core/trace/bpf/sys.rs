//! The BPF engine's one `unsafe` call: a thread that cannot open files.
//!
//! aya 0.14's `EbpfLoader::new` reads and parses the whole kernel BTF (5.5
//! MB, about 20 ms) whatever BTF it is given afterwards, and there is no
//! other way to make a loader. jailtrace gives it the cut (`btf.rs`), so
//! the loader is made on a thread of its own whose `open` calls fail: its
//! `Btf::from_sys_fs` then fails at once, which aya takes as "no BTF". aya
//! 0.15 reads it only when asked (`btf_source`), but needs rustc 1.98.

use crate::core::trace::arch;

/// Builds `make()`'s value on a new thread whose `open`, `openat` and
/// `openat2` fail with ENOENT, or on a plain one when the filter cannot be
/// installed there (the value is then the same, only slower to make).
pub fn made_without_opens<T: Send + 'static>(make: fn() -> T) -> std::thread::Result<T> {
    std::thread::spawn(move || {
        deny_opens_on_this_thread();
        make()
    })
    .join()
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

const fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Another architecture's calls (none are made) and everything but the
/// three opens are allowed.
const FILTER: [libc::sock_filter; 8] = [
    op(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
    op(JEQ_K, 0, 5, arch::NATIVE_AUDIT_ARCH),
    op(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
    op(JEQ_K, 2, 0, libc::SYS_open as u32),
    op(JEQ_K, 1, 0, libc::SYS_openat as u32),
    op(JEQ_K, 0, 1, libc::SYS_openat2 as u32),
    op(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOENT as u32),
    op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
];

/// Seccomp filters and no_new_privs belong to the calling thread alone
/// (no `SECCOMP_FILTER_FLAG_TSYNC`), so the rest of jailtrace keeps
/// opening files, and so do the threads it starts later.
fn deny_opens_on_this_thread() {
    let prog = libc::sock_fprog {
        len: FILTER.len() as u16,
        filter: FILTER.as_ptr().cast_mut(),
    };
    // SAFETY: prctl reads `prog` and the static FILTER it points to, both
    // alive for the call; a failure leaves the thread as it was.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                std::ptr::from_ref(&prog),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread cannot open a file the process can, and the process
    /// still can afterwards.
    #[test]
    fn only_the_loader_thread_is_denied() {
        fn open_self() -> std::io::Result<std::fs::File> {
            std::fs::File::open("/proc/self/status")
        }
        let there = made_without_opens(open_self).unwrap();
        assert_eq!(
            there.err().and_then(|e| e.raw_os_error()),
            Some(libc::ENOENT)
        );
        assert!(open_self().is_ok());
        assert!(std::thread::spawn(open_self).join().unwrap().is_ok());
    }

    /// aya's loader made there has no BTF of its own to parse.
    #[test]
    fn the_loader_made_there_holds_no_btf() {
        let loader = made_without_opens(aya::EbpfLoader::new).unwrap();
        assert!(format!("{loader:?}").contains("btf: None"), "{loader:?}");
    }
}
