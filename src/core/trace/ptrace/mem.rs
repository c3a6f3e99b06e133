//! Reading strings and structs out of a stopped tracee.

use std::io::IoSliceMut;

use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::unistd::Pid;

use super::sys;
use crate::core::trace::operand::unix_path;

const PAGE: u64 = 4096;
/// PATH_MAX, including the NUL.
const MAX_PATH: usize = 4096;
/// Bytes asked for by the first read of a string.
const FIRST_READ: usize = 256;

/// Reads `buf.len()` bytes at `addr`; falls back to PTRACE_PEEKDATA when
/// process_vm_readv is unavailable or refused.
pub fn read_exact(pid: Pid, addr: u64, buf: &mut [u8]) -> Option<()> {
    let remote = [RemoteIoVec {
        base: addr as usize,
        len: buf.len(),
    }];
    let len = buf.len();
    if let Ok(n) = process_vm_readv(pid, &mut [IoSliceMut::new(buf)], &remote) {
        if n == len {
            return Some(());
        }
    }
    peek_into(pid, addr, buf)
}

fn peek_into(pid: Pid, addr: u64, buf: &mut [u8]) -> Option<()> {
    let start = addr & !7;
    let mut word_addr = start;
    let end = addr + buf.len() as u64;
    while word_addr < end {
        let word = sys::peek(pid, word_addr).ok()?;
        for (i, b) in word.iter().enumerate() {
            let a = word_addr + i as u64;
            if a >= addr && a < end {
                buf[(a - addr) as usize] = *b;
            }
        }
        word_addr += 8;
    }
    Some(())
}

/// Reads a NUL-terminated string of at most PATH_MAX bytes. Reads stop at
/// page boundaries so that a string ending just before an unmapped page is
/// still read.
pub fn read_cstr(pid: Pid, addr: u64) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut cur = addr;
    let mut chunk = [0u8; PAGE as usize];
    // Most paths are short: the first read asks for a little, later ones
    // for the rest of their page.
    let mut step = FIRST_READ;
    while out.len() < MAX_PATH {
        let room = (PAGE - cur % PAGE) as usize;
        let want = room.min(step).min(MAX_PATH + 1 - out.len());
        step = PAGE as usize;
        let buf = &mut chunk[..want];
        read_exact(pid, cur, buf)?;
        if let Some(nul) = buf.iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..nul]);
            return Some(out);
        }
        out.extend_from_slice(buf);
        cur += want as u64;
    }
    None
}

pub fn read_u64(pid: Pid, addr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    read_exact(pid, addr, &mut b)?;
    Some(u64::from_ne_bytes(b))
}

/// The path of an AF_UNIX `sockaddr_un`, or `None` for other families,
/// abstract and unnamed sockets.
pub fn read_unix_path(pid: Pid, addr: u64, len: u64) -> Option<Vec<u8>> {
    const SUN_LEN: usize = std::mem::size_of::<libc::sockaddr_un>();
    let len = (len as usize).min(SUN_LEN);
    if addr == 0 || len <= 2 {
        return None;
    }
    let mut buf = [0u8; SUN_LEN];
    read_exact(pid, addr, &mut buf[..len])?;
    unix_path(&buf[..len])
}

/// Writes `data` at `addr` in the tracee (best effort).
pub fn write_bytes(pid: Pid, addr: u64, data: &[u8]) {
    let remote = [RemoteIoVec {
        base: addr as usize,
        len: data.len(),
    }];
    let _ = process_vm_writev(pid, &[std::io::IoSlice::new(data)], &remote);
}
