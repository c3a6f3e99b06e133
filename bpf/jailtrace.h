/* SPDX-License-Identifier: MIT OR GPL-2.0 */
/*
 * The contract between jailtrace.bpf.c and user space: every layout and
 * constant both sides read or write, and nothing else.
 *
 * The Rust mirror is src/core/trace/bpf/abi.rs. Its unit tests hold each
 * struct below, field by field (name, offset, size) and in size, to the
 * BTF of the committed jailtrace.bpf.o, and each #define here to a Rust
 * constant of the same name and value, both ways: a field or a constant
 * on one side only fails them. See bpf/README.md.
 */
#ifndef JAILTRACE_H
#define JAILTRACE_H

#include <linux/types.h>

/* descs[compat * NR_MAX + nr]: syscall numbers from 0 to NR_MAX - 1 have
 * a descriptor, native first, i386 after. */
#define NR_MAX 512

/* Flags of a descriptor. */
#define D_ON 1
#define D_EXEC 2      /* read the strings at entry */
#define D_SETID 4     /* send the credentials at exit */
#define D_RETFD 8     /* send the path of the returned descriptor */
#define D_CREATED 16  /* send whether the returned descriptor's file was created */
#define D_NOTE 32     /* no operands: the call itself is news (io_uring_setup) */
#define D_EMPTYFD 64  /* an empty path may name its dirfd's file (execveat, linkat) */
#define D_FDNULL 128  /* the descriptor is an operand only when str[0] is NULL (fanotify_mark) */

/* What to capture for a syscall: the value of `descs`, written by the
 * loader from the decode table. */
struct desc {
	__u8 flags;
	__u8 str[2];   /* argument index + 1 of a path string */
	__u8 dirfd[2]; /* argument index + 1 of its dirfd; 0: the cwd */
	__u8 sock;     /* argument index + 1 of a sockaddr */
	__u8 socklen;  /* argument index + 1 of its length */
	__u8 u64p;     /* argument index + 1 of a pointer to a u64 (open_how) */
	__u8 fd;       /* argument index + 1 of a descriptor whose path is wanted */
	__u8 msg;      /* message headers: one of the M_* below */
	__u8 oflags;   /* argument index + 1 of open flags: D_CREATED only with O_CREAT */
	__u8 ident;    /* what names the call's objects at exit: one of the ID_* below */
	__u8 pad[4];
};

/* For a thread in another mount namespace than the program's, the
 * objects a call used, as the kernel numbers them, so that user space can
 * tell whether the host's path names the same one (I_IDENT). */
#define ID_RETFD 1 /* the returned descriptor's file (key 0) */
#define ID_EXE 2   /* a successful exec's executable (key 0) */
#define ID_ROOTS 3 /* pivot_root: the new root (key 0), and put_old (key 1) */
#define ID_NSNEW 4 /* unshare: no object, but perhaps a new mount namespace */

/* Destinations in message headers (arg 1; arg 2 counts mmsghdrs), and
 * i386 socketcall (arg 0 the call, arg 1 its array of 32-bit arguments). */
#define M_MSG 1
#define M_MMSG 2
#define M_MSG32 3
#define M_MMSG32 4
#define M_SOCKETCALL 5
/* Headers of one sendmmsg read (more are counted as truncated). */
#define MAX_MSGS 16

/* Values of `traced` (by tgid): ARMED from registration (user space) to
 * the first exec, RECORDING after (the program). */
#define ARMED 1
#define RECORDING 2

/* Lost-data counters: the keys of `lost`. */
#define L_RINGBUF 0
#define L_TRUNCATED 1
#define L_READ 2
#define L_STASH 3
#define L_DEPTH 4
#define L_NOPATH 5 /* a deleted directory, a detached tree */
#define L_N 6

/* Calls seen but not decoded: the keys of `undecoded`. */
#define U_X32 0

/* Record kinds in the ring buffer. A syscall sends its items first, each
 * a record of its own tagged with the thread, then its event: the
 * records of one program run are in order, and user space gathers a
 * thread's items until its event comes. Both records start with their
 * kind; an item's is I_STR or more. */
#define E_SYSCALL 1
#define E_FORK 2
#define E_ROOT 3    /* at the first exec: the root directory, walked as a base (one inline item) */
#define I_STR 17    /* key: address; a NUL-terminated string */
#define I_BASE 18   /* key: dirfd (or AT_FDCWD); components, leaf first */
#define I_BYTES 19  /* key: address; raw bytes */
#define I_FDPATH 20 /* key: descriptor; components, leaf first */
#define I_CRED 21   /* 8 ids, then the supplementary groups */
#define I_IDENT 22  /* key: the operand (0, 1); the kernel's device and inode numbers, __u64 each */

/* Bits of event.flags. */
#define EV_CREATED 1 /* the returned descriptor's file was created */
#define EV_INLINE 2  /* one item follows the event in the same record */
#define EV_ABSENT 4  /* a rename's target did not exist */
#define EV_FOREIGN 8 /* the thread was in another mount namespace than the program's first exec */
#define EV_COPY 16   /* ... one copied from it (or from such a copy) and unchanged since */

struct event {
	__u32 kind;
	__u32 size;
	__u32 tid;
	__u32 tgid;
	__u32 nr;
	__u32 compat;
	__s64 ret; /* the return value; E_FORK: the parent's thread group */
	__u64 args[6];
	__u32 flags; /* EV_* */
	__u32 nitems;
};

/* An item's header; its `len` bytes of data follow it. */
struct item {
	__u32 kind;
	__u32 len;
	__u64 key;
	__u32 tid;
	__u32 pad;
};

#endif
