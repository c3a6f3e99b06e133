//! One interpreter of the decode table's operands for both engines: which
//! paths an operand names, made absolute. What differs between them is
//! only where the bytes come from, a [`Source`]: the stopped tracee's
//! memory and /proc (ptrace), or what the kernel program captured (bpf).

use std::borrow::Cow;

use super::decode::{self, Operand, Use};
use super::log::Item;
use crate::core::manifest::Op;

/// Where an engine reads a call's operands from. `'d` is how long the
/// bytes it hands out live (a captured event's), independent of the
/// borrow of the source itself.
pub trait Source<'d> {
    /// The path string at `addr` of a path operand with directory
    /// `dirfd`, as the kernel used it.
    fn path(&mut self, addr: u64, dirfd: i32, ops: decode::Ops) -> Option<Cow<'d, [u8]>>;
    /// The little-endian word at `addr`.
    fn u64_at(&mut self, addr: u64) -> Option<u64>;
    /// Up to `len` bytes at `addr` (fewer when the readable range ends
    /// first).
    fn bytes(&mut self, addr: u64, len: u64) -> Option<Cow<'d, [u8]>>;
    /// Exactly `buf.len()` bytes at `addr` into `buf` (a few bytes of a
    /// header: no allocation where the source can avoid it).
    fn read_into(&mut self, addr: u64, buf: &mut [u8]) -> Option<()> {
        let b = self.bytes(addr, buf.len() as u64)?;
        (b.len() == buf.len()).then(|| buf.copy_from_slice(&b))
    }
    /// The AF_UNIX path of the `sockaddr` at `addr` of length `len`.
    fn sockaddr(&mut self, addr: u64, len: u64) -> Option<Vec<u8>> {
        unix_path(&self.bytes(addr, len)?)
    }
    /// `p` made absolute against the cwd (`AT_FDCWD`) or `dirfd`, as the
    /// kernel resolves it now; `None` is no path (a loss is counted by the
    /// source).
    fn absolute(&mut self, dirfd: i32, p: &[u8]) -> Option<Vec<u8>>;
    /// A relative AF_UNIX name made absolute against the cwd.
    fn socket_absolute(&mut self, p: &[u8]) -> Option<Vec<u8>> {
        self.absolute(libc::AT_FDCWD, p)
    }
    /// The file descriptor `fd` refers to (`Operand::Fd`).
    fn fd(&mut self, fd: i32) -> Option<Vec<u8>>;
    /// The file of `dirfd` itself, for `AT_EMPTY_PATH` on `execveat` and
    /// `linkat`.
    fn dirfd_file(&mut self, dirfd: i32) -> Option<Vec<u8>>;
    /// The file of the descriptor the call returned.
    fn returned_fd(&mut self) -> Option<Vec<u8>>;
    /// How many message headers of one call the source has.
    fn max_messages(&self) -> u64 {
        decode::MAX_MMSG
    }
}

/// Adds the paths that operand `u` names, made absolute, to `items`.
pub fn read<'d>(src: &mut impl Source<'d>, u: &Use, items: &mut Vec<Item>) {
    let path = match u.operand {
        Operand::Path {
            dirfd,
            addr,
            empty_is_fd,
        } => {
            let Some(p) = src.path(addr, dirfd, u.ops) else {
                return;
            };
            if !p.is_empty() {
                src.absolute(dirfd, &p)
            } else if empty_is_fd
                && dirfd != libc::AT_FDCWD
                && u.ops.iter().any(|o| matches!(o, Op::Exec | Op::LinkFrom))
            {
                // execveat/linkat with AT_EMPTY_PATH: the descriptor's file.
                src.dirfd_file(dirfd)
            } else {
                // fstat-style, or an ENOENT on "": no path access.
                None
            }
        }
        Operand::Fd(fd) => src.fd(fd),
        Operand::ReturnedFd => src.returned_fd(),
        Operand::Sockaddr { addr, len } => src
            .sockaddr(addr, len)
            .and_then(|p| src.socket_absolute(&p)),
        Operand::SocketcallSockaddr { pair } => {
            // Two 32-bit values: the sockaddr pointer, then its length.
            src.u64_at(pair)
                .and_then(|v| src.sockaddr(v & 0xffff_ffff, v >> 32))
                .and_then(|p| src.socket_absolute(&p))
        }
        Operand::Openat2 { dirfd, addr, how } => {
            let Some(flags) = src.u64_at(how) else {
                return;
            };
            let (ops, follow) = decode::open_ops(flags);
            let Some(p) = src.path(addr, dirfd, ops).filter(|p| !p.is_empty()) else {
                return;
            };
            if let Some(a) = src.absolute(dirfd, &p) {
                items.push((a, follow, ops));
            }
            return;
        }
        Operand::Msghdrs {
            addr,
            count,
            stride,
            compat,
        } => return msg_destinations(src, u, (addr, count, stride, compat), items),
        Operand::SocketcallMsghdrs { args, many } => {
            // The 32-bit arguments (fd, msg, ...): msg, then vlen.
            let Some(v) = src.u64_at(args.wrapping_add(4)) else {
                return;
            };
            let (msg, vlen) = (v & 0xffff_ffff, v >> 32);
            let layout = if many {
                (msg, vlen, decode::MMSGHDR32, true)
            } else {
                (msg, 1, decode::MSGHDR32, true)
            };
            return msg_destinations(src, u, layout, items);
        }
    };
    if let Some(path) = path {
        items.push((path, u.follow, u.ops));
    }
}

/// The AF_UNIX destinations named by the message headers of a
/// sendmsg/sendmmsg (`addr`, `count`, `stride`, `compat`), each once.
/// Messages without one (a connected socket) add nothing.
fn msg_destinations<'d>(
    src: &mut impl Source<'d>,
    u: &Use,
    (addr, count, stride, compat): (u64, u64, u64, bool),
    items: &mut Vec<Item>,
) {
    let count = count.min(decode::MAX_MMSG).min(src.max_messages());
    if addr == 0 || count == 0 {
        return;
    }
    // msg_name and msg_namelen lead every header: a single message needs
    // only them. Many are read in one piece when the source has them so.
    let head = if compat { 8 } else { 16 };
    let all = (count > 1)
        .then(|| src.bytes(addr, count * stride))
        .flatten()
        .filter(|b| b.len() as u64 == count * stride);
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut one = [0u8; 16];
    for i in 0..count {
        let h: &[u8] = match &all {
            Some(all) => {
                let at = (i * stride) as usize;
                &all[at..at + head]
            }
            None => match src.read_into(addr.wrapping_add(i * stride), &mut one[..head]) {
                Some(()) => &one[..head],
                None => continue,
            },
        };
        let word = |at: usize, n: usize| -> u64 {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&h[at..at + n]);
            u64::from_le_bytes(b)
        };
        let (name, namelen) = if compat {
            (word(0, 4), word(4, 4))
        } else {
            (word(0, 8), word(8, 4))
        };
        if name == 0 || namelen == 0 {
            continue;
        }
        let Some(p) = src.sockaddr(name, namelen) else {
            continue;
        };
        if seen.contains(&p) {
            continue;
        }
        if let Some(abs) = src.socket_absolute(&p) {
            items.push((abs, u.follow, u.ops));
        }
        seen.push(p);
    }
}

/// The port an IPv4 or IPv6 `bind` of operand `u` asks for: `None` for
/// other operands, other families, and port 0 (any free port).
pub fn bound_port<'d>(src: &mut impl Source<'d>, u: &Use) -> Option<u16> {
    if !u.ops.iter().any(|o| o == Op::Bind) {
        return None;
    }
    // sockaddr_in and sockaddr_in6 both start with the family and the
    // port, in network byte order.
    let (addr, len) = match u.operand {
        Operand::Sockaddr { addr, len } => (addr, len),
        Operand::SocketcallSockaddr { pair } => {
            let v = src.u64_at(pair)?;
            (v & 0xffff_ffff, v >> 32)
        }
        _ => return None,
    };
    if len < 4 {
        return None;
    }
    let mut b = [0u8; 4];
    src.read_into(addr, &mut b)?;
    let family = u16::from_ne_bytes([b[0], b[1]]);
    if family != libc::AF_INET as u16 && family != libc::AF_INET6 as u16 {
        return None;
    }
    let port = u16::from_be_bytes([b[2], b[3]]);
    (port != 0).then_some(port)
}

/// The path of an AF_UNIX `sockaddr` (its first `len` bytes as the call
/// gave them); `None` for other families and abstract sockets.
pub fn unix_path(buf: &[u8]) -> Option<Vec<u8>> {
    const SUN_LEN: usize = std::mem::size_of::<libc::sockaddr_un>();
    let buf = &buf[..buf.len().min(SUN_LEN)];
    if buf.len() <= 2 {
        return None;
    }
    let family = u16::from_ne_bytes([buf[0], buf[1]]);
    if family != libc::AF_UNIX as u16 || buf[2] == 0 {
        return None;
    }
    let path = &buf[2..];
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    Some(path[..end].to_vec())
}
