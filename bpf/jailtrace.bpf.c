// SPDX-License-Identifier: MIT OR GPL-2.0
/*
 * jailtrace's eBPF recorder (`record --backend bpf`).
 *
 * It knows nothing of syscall semantics: user space fills `descs` from the
 * same decode table the ptrace backend uses, telling for each syscall
 * number which arguments are path strings (and which argument is their
 * dirfd), sockaddrs, descriptors or pointers to read. For a traced task
 * this program then
 *
 *   - at entry: saves the arguments; for a relative path, walks the
 *     dentries of the cwd or dirfd the kernel resolves it against, now
 *     (afterwards would be racy); reads exec's path (it is gone after a
 *     successful exec);
 *   - at exit: reads the strings (their pages are resident by now) and
 *     sends one event with the result to the ring buffer.
 *
 * Every other process pays one array lookup per syscall: the number is
 * checked first, the pid set second. Nothing wakes the reader (it polls
 * every few milliseconds): a wake-up per event would cost more than the
 * event. Anything lost (a full ring buffer, a
 * truncated string, a failed read) is counted in `lost`, never silent.
 *
 * Rebuild with bpf/build; the object is committed, so `cargo build`
 * needs no clang (see bpf/README.md).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* What user space shares: records, descriptors, constants. */
#include "jailtrace.h"

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s64 s64;

/* The kernel types this program reads, reduced to the fields it uses.
 * CO-RE relocates each field by name against the running kernel's BTF. */
struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));
struct super_block {
	u32 s_dev;
} __attribute__((preserve_access_index));
struct inode {
	struct super_block *i_sb;
	unsigned long i_ino;
} __attribute__((preserve_access_index));
struct hlist_bl_node {
	struct hlist_bl_node *next, **pprev;
} __attribute__((preserve_access_index));
struct dentry {
	struct hlist_bl_node d_hash;
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
} __attribute__((preserve_access_index));
struct vfsmount {
	struct dentry *mnt_root;
} __attribute__((preserve_access_index));
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
} __attribute__((preserve_access_index));
struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));
struct fs_struct {
	struct path root;
	struct path pwd;
} __attribute__((preserve_access_index));
struct file {
	struct path f_path;
	struct inode *f_inode;
	unsigned int f_mode;
} __attribute__((preserve_access_index));
struct mm_struct {
	struct file *exe_file;
} __attribute__((preserve_access_index));
struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));
struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));
typedef struct {
	int counter;
} atomic_t;
struct signal_struct {
	atomic_t live;
} __attribute__((preserve_access_index));
struct thread_info {
	u32 status;
} __attribute__((preserve_access_index));
typedef struct {
	u32 val;
} kuid_t;
typedef struct {
	u32 val;
} kgid_t;
struct group_info {
	int ngroups;
	kgid_t gid[];
} __attribute__((preserve_access_index));
struct cred {
	kuid_t uid;
	kgid_t gid;
	kuid_t suid;
	kgid_t sgid;
	kuid_t euid;
	kgid_t egid;
	kuid_t fsuid;
	kgid_t fsgid;
	struct group_info *group_info;
} __attribute__((preserve_access_index));
struct mount;
/* A namespace's id, never reused: ns.ns_id from 6.18, seq before. */
struct ns_common {
	u64 ns_id;
} __attribute__((preserve_access_index));
struct mnt_namespace {
	struct ns_common ns;
	struct mount *root;
	u64 seq;
	/* 0 until the first mount change in it (touch_mnt_namespace). */
	u64 event;
} __attribute__((preserve_access_index));
struct nsproxy {
	struct mnt_namespace *mnt_ns;
} __attribute__((preserve_access_index));
struct task_struct {
	struct thread_info thread_info;
	int pid;
	int tgid;
	struct nsproxy *nsproxy;
	struct mm_struct *mm;
	struct fs_struct *fs;
	struct files_struct *files;
	struct signal_struct *signal;
	const struct cred *cred;
} __attribute__((preserve_access_index));
struct linux_binprm {
	const char *filename;
	/* What runs: the filename, or an interpreter (#!, binfmt_misc). */
	const char *interp;
} __attribute__((preserve_access_index));
#define TS_COMPAT 0x0002
#define X32_SYSCALL_BIT 0x40000000
#define FMODE_CREATED 0x100000
#define O_CREAT 0100
#define CLONE_NEWNS 0x00020000
#define AT_FDCWD -100
#define EFAULT 14

/* Sizes. A path is at most PATH_MAX (4096) bytes with its NUL. */
#define STR_MAX 4096
#define WALK_MAX 4096
#define WALK_DEPTH 64
#define WALK_NONE 0xffffffff /* walk(), walk_fd(): no path to walk */
#define NAME_MAX_ 256
#define SOCK_MAX 112
#define NGROUPS_SENT 32

/* An item (jailtrace.h) and its data, sent as one ring record. No record
 * is built at a variable offset, which keeps the verifier's work linear. */
struct slot {
	struct item it;
	char data[STR_MAX];
};

struct stash {
	u32 nr;
	u32 compat;
	u64 args[6];
	u16 have_big;
	u16 empty; /* bit s: string s was "" at entry, so no base was walked */
	u8 valid; /* an entry is pending its exit */
	u8 ns;    /* the mount namespace at entry: EV_FOREIGN, EV_COPY */
	u16 target; /* a rename's target, as rename_target saw it: T_* */
	/* The walks entry makes (W_*): decided first, then read back from
	 * here, so that the verifier does not check the walks once for every
	 * combination of the decisions (kept on the stack, they stay live and
	 * no two of its states are equal). */
	u8 walks;
};
#define W_BASE0 1 /* << s: string s is relative, its base is walked */
#define W_FD 4
#define W_SOCKBASE 8
#define T_UNSEEN 0
#define T_EXISTED 1
#define T_ABSENT 2

/* What entry has to hand to exit beyond the stash: walked bases, exec's
 * path, a descriptor's path. Only inserted when needed. */
/* Slots 0 and 1: the bases of the call's first and second path operand
 * (SLOT_BASE0 + the operand's index). */
#define SLOT_BASE0 0
#define SLOT_STR0 2
#define SLOT_STR1 3
#define SLOT_FD 4
#define SLOT_SOCKBASE 5
#define SLOTS 6
struct big {
	struct slot s[SLOTS];
	/* pivot_root: the root's mount at entry (struct vfsmount *). */
	u64 old_root;
	/* exec: what runs is an interpreter of the file named (#!,
	 * binfmt_misc), so the executable is not the file the path named. */
	u64 interpreted;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * NR_MAX);
	__type(key, u32);
	__type(value, struct desc);
} descs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u32); /* tgid */
	__type(value, u8);
} traced SEC(".maps");

/* Per-thread state lives with the thread (task storage): no hash insert
 * and delete per syscall, and an exec from a non-leader thread, which
 * changes the thread's id, keeps it. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct stash);
} stashes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct big);
} bigs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct slot);
} scratch_slot SEC(".maps");

/* The common call (one path, nothing else to capture) sends its event and
 * its string as one record. */
struct inline_event {
	struct event ev;
	struct slot sl;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct inline_event);
} scratch_event SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L_N);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

/* Calls seen but not decoded (U_*). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} undecoded SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

static __always_inline void count_lost(u32 what)
{
	u64 *n = bpf_map_lookup_elem(&lost, &what);
	if (n)
		*n += 1;
}

/* The mount namespace of the program's first exec (struct mnt_namespace
 * *), whose paths are the host's (or the jail's, for verify), and its
 * root mount (struct mount *). */
#define HOME_NS 0
#define HOME_ROOT 1
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} home_ns SEC(".maps");

/* Namespaces the program copied from its own (unshare, clone), by id.
 * Such a copy resolves every path as home did at the copy for as long as
 * no mount has changed in it. Home may change meanwhile (the host's
 * mounts are not the program's): the objects of opens, execs and
 * pivot_root are checked in a copy too. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u8);
} copies SEC(".maps");

/* A namespace's id (never reused, unlike its address); 0 for none. */
static __always_inline u64 ns_id(struct mnt_namespace *ns)
{
	if (bpf_core_field_exists(ns->seq))
		return BPF_CORE_READ(ns, seq);
	if (bpf_core_field_exists(ns->ns.ns_id))
		return BPF_CORE_READ(ns, ns.ns_id);
	return 0;
}

/* The namespace's last mount change (0: none since it was made); without
 * the field, "changed". */
static __always_inline u64 ns_event(struct mnt_namespace *ns)
{
	if (bpf_core_field_exists(ns->event))
		return BPF_CORE_READ(ns, event);
	return ~0ULL;
}

/* EV_FOREIGN and EV_COPY for a thread in namespace `ns`: nothing for the
 * program's own (or before its first exec); EV_FOREIGN | EV_COPY for an
 * unchanged copy of it; EV_FOREIGN for any other. User space checks the
 * objects of both, and takes the other paths of a copy as named. */
static __always_inline u8 ns_state(struct mnt_namespace *ns)
{
	u32 k = HOME_NS;
	u64 *home = bpf_map_lookup_elem(&home_ns, &k);
	if (!home || !*home || (u64)ns == *home)
		return 0;
	u64 id = ns_id(ns);
	if (id && bpf_map_lookup_elem(&copies, &id) && ns_event(ns) == 0)
		return EV_FOREIGN | EV_COPY;
	return EV_FOREIGN;
}

/* A new namespace `ns`, copied from one in state `from`: a copy of home
 * when `from` was home or such a copy. A global function: checked once,
 * not in each program that calls it. */
__noinline u64 ns_copied_global(u64 ns_ptr, u64 from)
{
	struct mnt_namespace *ns = (struct mnt_namespace *)ns_ptr;
	if ((from & (EV_FOREIGN | EV_COPY)) == EV_FOREIGN)
		return 0;
	u64 id = ns_id(ns);
	u8 yes = 1;
	if (!id)
		return 0;
	/* A full map leaves it unknown, which only costs checks. */
	bpf_map_update_elem(&copies, &id, &yes, BPF_ANY);
	return 0;
}

static __always_inline struct mnt_namespace *ns_of(struct task_struct *t)
{
	return BPF_CORE_READ(t, nsproxy, mnt_ns);
}

/* traced[tgid]: ARMED from registration to the first exec (jailtrace's
 * own child code before it is not the program's), RECORDING after. */
static __always_inline u8 *traced_state(void)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	return bpf_map_lookup_elem(&traced, &tgid);
}

/* The file of descriptor `fd` of the current task, or NULL. */
static __always_inline struct file *file_of(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if (fd < 0 || (unsigned int)fd >= max)
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* Field offsets of the walk, relocated in the caller: the loader
 * relocates CO-RE accesses of the main programs only, not of bpf_loop
 * callbacks. 32 bits each: every byte of a walk's frames counts against
 * the 512-byte stack that the program and its calls share. */
struct walk_offsets {
	u32 mnt_root, mnt_parent, mountpoint, mnt, parent, name;
};

struct walk_ctx {
	struct vfsmount *vm;
	struct mount *mnt;
	/* The root dentry of `vm`, read once per mount. */
	struct dentry *root;
	struct dentry *d;
	char *out;
	u32 off;
	struct walk_offsets o;
	/* The root mount of the task's namespace: a walk that ends at another
	 * mount without a parent is in a detached tree (open_tree), whose
	 * paths the host does not have. */
	struct mount *ns_root;
};

/* walk_step's read buffer: off the stack (see walk_offsets). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64[8]);
} scratch_block SEC(".maps");

static __always_inline void *ptr_at(void *base, u64 off)
{
	void *p = 0;
	bpf_probe_read_kernel(&p, sizeof(p), (char *)base + off);
	return p;
}

/* One step up from w->d: a mount crossing, or one component written. */
static long walk_step(u32 i, void *arg)
{
	struct walk_ctx *w = arg;
	if (w->d == w->root) {
		struct mount *parent = ptr_at(w->mnt, w->o.mnt_parent);
		if (parent == w->mnt) {
			/* The root of home is a host path too, from any namespace
			 * (a descriptor opened before an unshare). */
			u32 k = HOME_ROOT;
			u64 *home_root = bpf_map_lookup_elem(&home_ns, &k);
			if (w->mnt != w->ns_root && !(home_root && *home_root == (u64)w->mnt)) {
				count_lost(L_NOPATH);
				w->off = WALK_NONE;
			}
			return 1;
		}
		w->d = ptr_at(w->mnt, w->o.mountpoint);
		w->mnt = parent;
		w->vm = (struct vfsmount *)((char *)parent + w->o.mnt);
		w->root = ptr_at(w->vm, w->o.mnt_root);
		return 0;
	}
	/* d_parent and d_name.name in one read when they are close (they
	 * are 16 bytes apart on x86_64). */
	u32 zero = 0;
	u64 *block = bpf_map_lookup_elem(&scratch_block, &zero);
	struct dentry *up;
	const unsigned char *name;
	u64 span = (u64)w->o.name - w->o.parent;
	if (block && w->o.name > w->o.parent && span <= 56 && span % 8 == 0) {
		if (bpf_probe_read_kernel(block, (span + 8) & 63, (char *)w->d + w->o.parent) != 0)
			block[0] = block[(span / 8) & 7] = 0;
		up = (struct dentry *)block[0];
		name = (const unsigned char *)block[(span / 8) & 7];
	} else {
		up = ptr_at(w->d, w->o.parent);
		name = ptr_at(w->d, w->o.name);
	}
	if (up == w->d) {
		/* Its own parent but not its mount's root, before any name: a
		 * pseudo file (pipe, socket, anon inode), which has no path
		 * (/proc shows "pipe:[N]"), not the root "/". Further up, an
		 * escaped dentry keeps the components so far, as d_path does. */
		if (!w->off)
			w->off = WALK_NONE;
		return 1;
	}
	u64 off = w->off;
	if (off > WALK_MAX - NAME_MAX_) {
		count_lost(L_TRUNCATED);
		return 1;
	}
	long n = bpf_probe_read_kernel_str(w->out + off, NAME_MAX_, name);
	if (n <= 0) {
		count_lost(L_READ);
		return 1;
	}
	w->off = off + n;
	w->d = up;
	return 0;
}

/*
 * Writes the path of (mnt, dentry) into `out` (WALK_MAX bytes) as its
 * components, leaf first, each NUL-terminated, and returns the bytes
 * written (0 for the root, WALK_NONE for a file without a path). Mount
 * points are crossed up to the root of the mount namespace, as
 * /proc/PID/cwd shows a path to a process outside any chroot. bpf_loop:
 * the verifier checks one step, not every depth.
 */
/* Where a walk starts, as scalars, with the field offsets relocated in
 * the caller (see walk_ctx). */
struct walk_args {
	u64 vm, d, ns_root;
	struct walk_offsets o;
};
struct walk_out {
	char data[WALK_MAX];
};

/* A global function: the verifier checks it once, on its own, instead of
 * once more at every walk in the programs (about 5 ms of start-up each). */
__noinline u64 walk_global(struct walk_args *a, struct walk_out *out)
{
	if (!a || !out)
		return 0;
	struct walk_ctx w = {
		.vm = (struct vfsmount *)a->vm,
		.mnt = (struct mount *)(a->vm - a->o.mnt),
		.d = (struct dentry *)a->d,
		.out = out->data,
		.off = 0,
		.o = a->o,
		.ns_root = (struct mount *)a->ns_root,
	};
	w.root = ptr_at(w.vm, w.o.mnt_root);
	long steps = bpf_loop(WALK_DEPTH, walk_step, &w, 0);
	if (steps >= WALK_DEPTH)
		count_lost(L_DEPTH);
	return w.off;
}

static __always_inline u32 walk(struct vfsmount *vm, struct dentry *d, char *out)
{
	/* A deleted directory (unhashed, and not a root of its own as pipes
	 * and sockets are) still has its old name, but no path on the host:
	 * a path built from it would be made up. */
	if (!BPF_CORE_READ(d, d_hash.pprev) && BPF_CORE_READ(d, d_parent) != d) {
		count_lost(L_NOPATH);
		return WALK_NONE;
	}
	struct walk_args a = {
		.vm = (u64)vm,
		.d = (u64)d,
		.ns_root = (u64)BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), nsproxy,
					      mnt_ns, root),
		.o = {
			.mnt_root = bpf_core_field_offset(struct vfsmount, mnt_root),
			.mnt_parent = bpf_core_field_offset(struct mount, mnt_parent),
			.mountpoint = bpf_core_field_offset(struct mount, mnt_mountpoint),
			.mnt = bpf_core_field_offset(struct mount, mnt),
			.parent = bpf_core_field_offset(struct dentry, d_parent),
			.name = bpf_core_field_offset(struct dentry, d_name) +
				bpf_core_field_offset(struct qstr, name),
		},
	};
	/* 64 bits: the test below then bounds the very register the
	 * callers use (a 32-bit copy would be tested instead). */
	u64 n = walk_global(&a, (struct walk_out *)out);
	/* Each step checks its room, so this never cuts; but the verifier
	 * knows nothing of a global function's result and needs the bound.
	 * The barrier keeps clang from dropping the test, since it can see
	 * the function's range. */
	barrier_var(n);
	if (n == WALK_NONE)
		return WALK_NONE;
	if (n > WALK_MAX)
		n = WALK_MAX;
	return n;
}

static __always_inline u32 walk_fd(int fd, char *out)
{
	if (fd == AT_FDCWD) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct vfsmount *vm = BPF_CORE_READ(task, fs, pwd.mnt);
		struct dentry *d = BPF_CORE_READ(task, fs, pwd.dentry);
		return walk(vm, d, out);
	}
	struct file *f = file_of(fd);
	if (!f)
		return WALK_NONE;
	struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	return walk(vm, d, out);
}

/* What the first byte of a path string says at entry. */
#define P_ABS 0
#define P_REL 1   /* relative, or unreadable now: its base is walked */
#define P_EMPTY 2
#define P_NULL 3  /* no string: a NULL pointer names no path to base */
static __always_inline int path_start(u64 addr)
{
	char c = 0;
	if (!addr)
		return P_NULL;
	if (bpf_probe_read_user(&c, 1, (void *)addr) < 0)
		return P_REL;
	if (c == '/')
		return P_ABS;
	return c ? P_REL : P_EMPTY;
}

/* Argument `a` - 1 (descriptors number arguments from 1; 0 is none). */
static __always_inline u64 arg_n(u64 *args, u8 a)
{
	u32 i = (u32)a - 1;
	barrier_var(i);
	if (i > 5)
		return 0;
	return args[i];
}

/* Whether the sockaddr at `addr` is an AF_UNIX path relative to the cwd. */
static __always_inline int unix_relative(u64 addr)
{
	struct {
		u16 family;
		char first;
	} head = {};
	return addr && bpf_probe_read_user(&head, 3, (void *)addr) == 0 && head.family == 1 &&
	       head.first != '/' && head.first != 0;
}

/* The destination (msg_name, msg_namelen) at the start of the message
 * header at `h`, native or i386 layout; 0 when unreadable. */
static __always_inline int msg_name_at(u64 h, u32 compat, u64 *name, u64 *namelen)
{
	if (compat) {
		u32 head[2] = {};
		if (bpf_probe_read_user(head, 8, (void *)h) != 0)
			return 0;
		*name = head[0];
		*namelen = head[1];
	} else {
		u64 head[2] = {};
		if (bpf_probe_read_user(head, 16, (void *)h) != 0)
			return 0;
		*name = head[0];
		*namelen = (u32)head[1];
	}
	return 1;
}

struct rel_ctx {
	u64 base;
	u64 count;
	u32 stride;
	u32 compat;
	int found;
};

static long rel_step(u32 i, void *arg)
{
	struct rel_ctx *r = arg;
	if (i >= r->count)
		return 1;
	u64 name = 0, namelen = 0;
	if (!msg_name_at(r->base + (u64)i * r->stride, r->compat, &name, &namelen))
		return 0;
	if (unix_relative(name)) {
		r->found = 1;
		return 1;
	}
	return 0;
}

/* Whether a message header names a relative AF_UNIX destination. */
static __always_inline int msgs_relative(u64 base, u64 count, u32 stride, int compat)
{
	struct rel_ctx r = {.base = base, .count = count, .stride = stride, .compat = compat};
	bpf_loop(MAX_MSGS, rel_step, &r, 0);
	return r.found;
}

/* i386 socketcall's call numbers (linux/net.h SYS_*) that name an
 * address. */
#define SC_BIND 2
#define SC_CONNECT 3
#define SC_SENDTO 11
#define SC_SENDMSG 16
#define SC_SENDMMSG 20

/* The bytes between message headers in an array: struct msghdr (56) for
 * sendmsg, struct mmsghdr (64) for sendmmsg, and their i386 layouts
 * (compat_msghdr 28, compat_mmsghdr 32). */
#define STRIDE_MSG 56
#define STRIDE_MMSG 64
#define STRIDE_MSG32 28
#define STRIDE_MMSG32 32

/* The bytes of arguments the kernel copies for an i386 socketcall that
 * names an address (net/socket.c nargs[]), 0 for the others. Not more:
 * an array that ends right before an unmapped page is valid. */
static __always_inline u32 socketcall_size(u64 call)
{
	switch (call) {
	case SC_BIND:
	case SC_CONNECT:
	case SC_SENDMSG:
		return 12;
	case SC_SENDMMSG:
		return 16;
	case SC_SENDTO:
		return 24;
	}
	return 0;
}

/* Whether the call's sockaddrs (in message headers or an i386
 * socketcall) hold a relative AF_UNIX path: then it needs the cwd. */
static __always_inline int msg_needs_cwd(u8 kind, u64 *args)
{
	switch (kind) {
	case M_MSG:
		return msgs_relative(args[1], 1, STRIDE_MSG, 0);
	case M_MMSG:
		return msgs_relative(args[1], args[2], STRIDE_MMSG, 0);
	case M_MSG32:
		return msgs_relative(args[1], 1, STRIDE_MSG32, 1);
	case M_MMSG32:
		return msgs_relative(args[1], args[2], STRIDE_MMSG32, 1);
	case M_SOCKETCALL: {
		u32 a[6] = {};
		u32 n = socketcall_size(args[0]);
		if (!n || bpf_probe_read_user(a, n, (void *)args[1]) != 0)
			return 0;
		switch (args[0]) {
		case SC_BIND:
		case SC_CONNECT:
			return unix_relative(a[1]);
		case SC_SENDTO:
			return unix_relative(a[4]);
		case SC_SENDMSG:
			return msgs_relative(a[1], 1, STRIDE_MSG32, 1);
		case SC_SENDMMSG:
			return msgs_relative(a[1], a[2], STRIDE_MMSG32, 1);
		}
	}
	}
	return 0;
}

static __always_inline void set_item(struct item *it, u32 kind, u32 len, u64 key, u32 tid)
{
	it->kind = kind;
	it->len = len;
	it->key = key;
	it->tid = tid;
	it->pad = 0;
}

/* Whether pivot_root's old root is wanted at exit: it names put_old's
 * object, for a thread in another mount namespace than home. */
static __always_inline int old_root_wanted(struct desc *d, struct stash *st)
{
	return d->ident == ID_ROOTS && (st->ns & EV_FOREIGN);
}

/* The root directory of the program's first exec, walked like a base up
 * to the namespace's root (E_ROOT): what of a walked path lies above it
 * is not the program's to see (jailtrace itself in a chroot, or the jail
 * verify runs in), and user space takes it off. */
static __always_inline void send_root(void)
{
	u32 zero = 0;
	struct inline_event *ie = bpf_map_lookup_elem(&scratch_event, &zero);
	if (!ie)
		return;
	struct task_struct *task = bpf_get_current_task_btf();
	u32 n = walk(task->fs->root.mnt, task->fs->root.dentry, ie->sl.data);
	if (n == WALK_NONE)
		return;
	u64 pid_tgid = bpf_get_current_pid_tgid();
	__builtin_memset(&ie->ev, 0, sizeof(ie->ev));
	ie->ev.kind = E_ROOT;
	ie->ev.tid = (u32)pid_tgid;
	ie->ev.tgid = pid_tgid >> 32;
	ie->ev.flags = EV_INLINE;
	ie->ev.nitems = 1;
	set_item(&ie->sl.it, I_BASE, n, 0, (u32)pid_tgid);
	u32 size = sizeof(struct event) + sizeof(struct item) + n;
	if (size > sizeof(struct inline_event))
		size = sizeof(struct inline_event);
	ie->ev.size = size;
	if (bpf_ringbuf_output(&events, ie, size, BPF_RB_NO_WAKEUP) != 0)
		count_lost(L_RINGBUF);
}

/* sys_enter's copy of the registers (see there). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64[15]);
} scratch_regs SEC(".maps");

SEC("raw_tracepoint/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	u64 nr = ctx->args[1];
	/* The number first: every untraced process stops at one of these. */
	if (nr >= NR_MAX) {
		if ((nr & X32_SYSCALL_BIT) && traced_state()) {
			u32 x32 = U_X32;
			u64 *n = bpf_map_lookup_elem(&undecoded, &x32);
			if (n)
				*n += 1;
		}
		return 0;
	}
	u32 k = nr;
	struct desc *dn = bpf_map_lookup_elem(&descs, &k);
	k = nr + NR_MAX;
	struct desc *dc = bpf_map_lookup_elem(&descs, &k);
	if (!dn || !dc || !((dn->flags | dc->flags) & D_ON))
		return 0;
	u8 *state = traced_state();
	if (!state)
		return 0;

	struct task_struct *me = bpf_get_current_task_btf();
	/* A BTF pointer: read directly, no helper call. */
	u32 compat = (me->thread_info.status & TS_COMPAT) ? 1 : 0;
	struct desc *d = compat ? dc : dn;
	if (!(d->flags & D_ON))
		return 0;
	if (*state != RECORDING) {
		if (!(d->flags & D_EXEC))
			return 0;
		*state = RECORDING;
		u32 k = HOME_NS;
		u64 *home = bpf_map_lookup_elem(&home_ns, &k);
		if (home && !*home) {
			struct mnt_namespace *ns = ns_of(me);
			*home = (u64)ns;
			k = HOME_ROOT;
			u64 *root = bpf_map_lookup_elem(&home_ns, &k);
			if (root)
				*root = (u64)BPF_CORE_READ(ns, root);
			send_root();
		}
	}
	struct stash *st = bpf_task_storage_get(&stashes, me, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		count_lost(L_STASH);
		return 0;
	}
	st->nr = nr;
	st->compat = compat;
	/* The registers in one read: x86's struct pt_regs is user ABI
	 * (asm/ptrace.h), so its layout needs no relocation. Into a per-CPU
	 * buffer: 120 bytes on the stack would live on under every walk. */
	u32 zero = 0;
	u64 *r = bpf_map_lookup_elem(&scratch_regs, &zero);
	if (!r) {
		count_lost(L_STASH);
		return 0;
	}
	if (bpf_probe_read_kernel(r, 15 * sizeof(u64), (void *)ctx->args[0]) != 0) {
		count_lost(L_READ);
		return 0;
	}
	if (compat) {
		/* ebx, ecx, edx, esi, edi, ebp */
		st->args[0] = (u32)r[5];
		st->args[1] = (u32)r[11];
		st->args[2] = (u32)r[12];
		st->args[3] = (u32)r[13];
		st->args[4] = (u32)r[14];
		st->args[5] = (u32)r[4];
	} else {
		/* rdi, rsi, rdx, r10, r8, r9 */
		st->args[0] = r[14];
		st->args[1] = r[13];
		st->args[2] = r[12];
		st->args[3] = r[7];
		st->args[4] = r[9];
		st->args[5] = r[8];
	}
	st->target = T_UNSEEN;
	st->valid = 1;
	st->ns = ns_state(ns_of(me));

	/* What needs more than the arguments: exec's path, a relative path's
	 * base, a descriptor's path, a relative AF_UNIX name's cwd. */
	u8 walks = 0;
	u16 empty = 0;
	int need = d->flags & D_EXEC;
	for (int s = 0; s < 2; s++) {
		u8 a = d->str[s];
		if (!a || a > 6)
			continue;
		int start = path_start(arg_n(st->args, a));
		if (start == P_EMPTY && !(d->flags & D_EMPTYFD)) {
			/* "" names no path (glibc's fstat is newfstatat(fd, "",
			 * AT_EMPTY_PATH)): nothing to walk. */
			empty |= 1 << s;
		} else if (start != P_ABS && start != P_NULL) {
			walks |= W_BASE0 << s;
			need = 1;
		}
	}
	st->empty = empty;
	int fd_wanted = d->fd && d->fd <= 6 &&
			(!(d->flags & D_FDNULL) || !arg_n(st->args, d->str[0]));
	int sock_cwd = (d->sock && d->sock <= 6 && unix_relative(arg_n(st->args, d->sock))) ||
		       (d->msg && msg_needs_cwd(d->msg, st->args));
	need |= fd_wanted | sock_cwd | old_root_wanted(d, st);
	st->have_big = 0;
	st->walks = walks | (fd_wanted ? W_FD : 0) | (sock_cwd ? W_SOCKBASE : 0);
	if (!need)
		return 0;
	struct big *b = bpf_task_storage_get(&bigs, me, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!b) {
		count_lost(L_STASH);
		return 0;
	}
	st->have_big = 1;
	/* Read back as the verifier sees memory: any value (see walks). */
	walks = *(volatile u8 *)&st->walks;
	u32 tid = (u32)bpf_get_current_pid_tgid();
	for (int i = 0; i < SLOTS; i++)
		b->s[i].it.kind = 0;
	b->interpreted = 0;
	for (int s = 0; s < 2; s++) {
		u8 a = d->str[s];
		if (!a || a > 6)
			continue;
		u64 addr = arg_n(st->args, a);
		if (d->flags & D_EXEC) {
			/* Gone after a successful exec: taken from the kernel's copy
			 * then (process_exec), from the program's memory at exit if
			 * it fails. Here only the address is kept. */
			b->s[SLOT_STR0 + s].it.key = addr;
		}
		if (walks & (W_BASE0 << s)) {
			u8 f = d->dirfd[s];
			int dirfd = f && f <= 6 ? (int)arg_n(st->args, f) : AT_FDCWD;
			u32 n = walk_fd(dirfd, b->s[SLOT_BASE0 + s].data);
			/* A bad dirfd (EBADF) or a pipe's (ENOTDIR): nothing to base. */
			if (n != WALK_NONE)
				set_item(&b->s[SLOT_BASE0 + s].it, I_BASE, n, (u64)(s64)dirfd, tid);
		}
	}
	if (walks & W_FD) {
		int fd = (int)arg_n(st->args, d->fd);
		u32 n = walk_fd(fd, b->s[SLOT_FD].data);
		if (n != WALK_NONE)
			set_item(&b->s[SLOT_FD].it, I_FDPATH, n, (u64)(s64)fd, tid);
	}
	if (walks & W_SOCKBASE) {
		u32 n = walk_fd(AT_FDCWD, b->s[SLOT_SOCKBASE].data);
		if (n != WALK_NONE)
			set_item(&b->s[SLOT_SOCKBASE].it, I_BASE, n, (u64)(s64)AT_FDCWD, tid);
	}
	/* Recomputed rather than kept: every live value costs stack under
	 * the walks. */
	/* The task asked again and its fields read directly: keeping `me`,
	 * or BPF_CORE_READ's steps, would cost stack under the walks. */
	if (old_root_wanted(d, st))
		b->old_root = (u64)bpf_get_current_task_btf()->fs->root.mnt;
	return 0;
}

/* Sends a slot (header and `it.len` bytes of data) as one record. */
static __always_inline void send_slot(struct slot *sl, u32 *nitems)
{
	u32 len = sl->it.len;
	if (len > STR_MAX)
		len = STR_MAX;
	if (bpf_ringbuf_output(&events, sl, sizeof(struct item) + len, BPF_RB_NO_WAKEUP) != 0)
		count_lost(L_RINGBUF);
	else
		*nitems += 1;
}

static __always_inline struct slot *scratch(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&scratch_slot, &zero);
}

/* Sends `len` (at most SOCK_MAX) bytes of the program's memory at `addr`. */
static __always_inline void send_user_bytes(u64 addr, u64 len, u32 tid, u32 *nitems, int efault)
{
	struct slot *sl = scratch();
	if (!sl || !addr || len == 0)
		return;
	if (len > SOCK_MAX)
		len = SOCK_MAX;
	if (bpf_probe_read_user(sl->data, len, (void *)addr) != 0) {
		if (!efault)
			count_lost(L_READ);
		return;
	}
	set_item(&sl->it, I_BYTES, len, addr, tid);
	send_slot(sl, nitems);
}

struct msg_ctx {
	u64 base;
	u64 count;
	u32 stride;
	u32 compat;
	u32 tid;
	u32 nitems;
	int efault;
};

/* One message header: its start (name pointer and length), and the name. */
static long msg_step(u32 i, void *arg)
{
	struct msg_ctx *m = arg;
	if (i >= m->count)
		return 1;
	u64 h = m->base + (u64)i * m->stride;
	u64 name = 0, namelen = 0;
	if (!msg_name_at(h, m->compat, &name, &namelen))
		return 0;
	send_user_bytes(h, m->compat ? 8 : 16, m->tid, &m->nitems, m->efault);
	if (name && namelen)
		send_user_bytes(name, namelen, m->tid, &m->nitems, m->efault);
	return 0;
}

/* The headers' loop, as a global function: the verifier checks it once
 * rather than at each of the six places sys_exit reads headers. Returns
 * the number of items sent. */
__noinline u64 msghdrs_global(struct msg_ctx *m)
{
	if (!m)
		return 0;
	struct msg_ctx c = *m;
	c.nitems = 0;
	bpf_loop(MAX_MSGS, msg_step, &c, 0);
	return c.nitems;
}

/* The destinations of `count` message headers `stride` bytes apart at
 * `base`. bpf_loop: the verifier checks one header, not sixteen. */
static __always_inline void send_msghdrs(u64 base, u64 count, u32 stride, int compat, u32 tid, u32 *nitems, int efault)
{
	if (count > MAX_MSGS) {
		count_lost(L_TRUNCATED);
		count = MAX_MSGS;
	}
	struct msg_ctx m = {
		.base = base,
		.count = count,
		.stride = stride,
		.compat = compat,
		.tid = tid,
		.nitems = 0,
		.efault = efault,
	};
	*nitems += msghdrs_global(&m);
}

/* An object as the kernel numbers it, for operand `key`; (0, 0) is no
 * object, which names nothing on the host. */
static __always_inline void send_pair(u64 dev, u64 ino, u64 key, u32 tid, u32 *nitems)
{
	struct slot *sl = scratch();
	if (!sl)
		return;
	u64 *v = (u64 *)sl->data;
	v[0] = dev;
	v[1] = ino;
	set_item(&sl->it, I_IDENT, 16, key, tid);
	send_slot(sl, nitems);
}

static __always_inline void send_ident(struct inode *ino, u64 key, u32 tid, u32 *nitems)
{
	if (ino)
		send_pair(BPF_CORE_READ(ino, i_sb, s_dev), BPF_CORE_READ(ino, i_ino), key, tid, nitems);
}

/* The objects a successful call used (desc.ident), for a thread in
 * another mount namespace than home (`ns`: the stash's); returns the
 * items sent. A global function, called unconditionally with scalars:
 * the verifier checks it once, sys_exit's paths do not fork at it, and
 * its reads take no stack in sys_exit's frame. */
__noinline u64 idents_global(u64 ident, s64 ret, u64 ns, u64 tid)
{
	if (!(ns & EV_FOREIGN) || ret < 0)
		return 0;
	u32 sent = 0;
	u32 *nitems = &sent;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct big *b = ident == ID_ROOTS || ident == ID_EXE
				? bpf_task_storage_get(&bigs, bpf_get_current_task_btf(), 0, 0)
				: 0;
	switch (ident) {
	case ID_RETFD: {
		struct file *f = file_of((int)ret);
		if (f)
			send_ident(BPF_CORE_READ(f, f_inode), 0, tid, nitems);
		break;
	}
	case ID_EXE:
		if (ret != 0)
			break;
		/* The executable is the interpreter's: the file named has no
		 * object to show. */
		if (b && b->interpreted)
			send_pair(0, 0, 0, tid, nitems);
		else
			send_ident(BPF_CORE_READ(task, mm, exe_file, f_inode), 0, tid, nitems);
		break;
	case ID_ROOTS:
		if (ret != 0)
			break;
		send_ident(BPF_CORE_READ(task, fs, root.dentry, d_inode), 0, tid, nitems);
		/* The old root is mounted on put_old now. */
		if (b && b->old_root) {
			struct mount *m = (struct mount *)(b->old_root -
							   bpf_core_field_offset(struct mount, mnt));
			send_ident(BPF_CORE_READ(m, mnt_mountpoint, d_inode), 1, tid, nitems);
		}
		break;
	}
	return sent;
}

SEC("raw_tracepoint/sys_exit")
int sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct task_struct *me = bpf_get_current_task_btf();
	struct stash *sp = bpf_task_storage_get(&stashes, me, 0, 0);
	if (!sp || !sp->valid)
		return 0;
	sp->valid = 0;
	u32 k = sp->nr + (sp->compat ? NR_MAX : 0);
	struct desc *d = bpf_map_lookup_elem(&descs, &k);
	if (!d)
		return 0;
	/* The result read again at each use, not kept: a kept one stays live
	 * to the end with what each branch learnt of it, and the verifier
	 * then checks the rest once per branch taken. */
#define RET (*(volatile s64 *)&ctx->args[1])
#define EFAULTED (RET == -EFAULT)
	u32 nitems = 0;
	u32 flags = 0;

	/* One path string and nothing else (not fanotify_mark's descriptor,
	 * its operand when the path is NULL): the string rides in the event's
	 * record (after the base a relative one was walked against). */
	/* A thread in another mount namespace sends its objects: not
	 * inline. */
	if (d->str[0] && !d->str[1] && !d->sock && !d->msg && !d->u64p && !d->fd &&
	    !(d->flags & (D_RETFD | D_SETID | D_EXEC)) &&
	    !(sp->ns & EV_FOREIGN)) {
		u32 zero = 0;
		struct inline_event *ie = bpf_map_lookup_elem(&scratch_event, &zero);
		if (!ie)
			return 0;
		u64 addr = arg_n(sp->args, d->str[0]);
		long n = bpf_probe_read_user_str(ie->sl.data, STR_MAX, (void *)addr);
		if (sp->empty & 1) {
			/* Still "": the call named no path, and there is nothing to
			 * send. Changed since entry: it has no base, so it is lost. */
			if (n > 1)
				count_lost(L_READ);
			return 0;
		}
		u32 sent = 0;
		struct big *bb = sp->have_big ? bpf_task_storage_get(&bigs, me, 0, 0) : 0;
		if (bb && bb->s[SLOT_BASE0].it.kind) {
			bb->s[SLOT_BASE0].it.tid = tid;
			send_slot(&bb->s[SLOT_BASE0], &sent);
		}
		u32 size = sizeof(struct event);
		ie->ev.flags = sp->ns;
		ie->ev.nitems = sent;
		if (n >= 0) {
			if (n >= STR_MAX)
				count_lost(L_TRUNCATED);
			set_item(&ie->sl.it, I_STR, n, addr, tid);
			ie->ev.flags |= EV_INLINE;
			ie->ev.nitems = sent + 1;
			size += sizeof(struct item) + n;
		} else if (!EFAULTED && addr) {
			count_lost(L_READ);
		}
		if ((d->flags & D_CREATED) && RET >= 0 &&
		    (!d->oflags || (arg_n(sp->args, d->oflags) & O_CREAT))) {
			struct file *f = file_of((int)RET);
			if (f && (BPF_CORE_READ(f, f_mode) & FMODE_CREATED))
				ie->ev.flags |= EV_CREATED;
		}
		u64 pid_tgid = bpf_get_current_pid_tgid();
		ie->ev.kind = E_SYSCALL;
		ie->ev.size = size;
		ie->ev.tid = (u32)pid_tgid;
		ie->ev.tgid = pid_tgid >> 32;
		ie->ev.nr = sp->nr;
		ie->ev.compat = sp->compat;
		ie->ev.ret = RET;
		for (int i = 0; i < 6; i++)
			ie->ev.args[i] = sp->args[i];
		if (size > sizeof(struct inline_event))
			size = sizeof(struct inline_event);
		if (bpf_ringbuf_output(&events, ie, size, BPF_RB_NO_WAKEUP) != 0)
			count_lost(L_RINGBUF);
		return 0;
	}

	struct big *b = sp->have_big ? bpf_task_storage_get(&bigs, me, 0, 0) : 0;
	if (b) {
		for (int i = 0; i < SLOTS; i++) {
			if (!b->s[i].it.kind)
				continue;
			/* Exec's path is the kernel's copy, for a successful one. */
			if ((i == SLOT_STR0 || i == SLOT_STR1) && RET != 0)
				continue;
			/* An exec from a thread changed its id since entry. */
			b->s[i].it.tid = tid;
			send_slot(&b->s[i], &nitems);
		}
	}
	/* A failed exec left the program as it was: read its strings now,
	 * like any call's. */
	if (!(d->flags & D_EXEC) || RET < 0) {
		for (int s = 0; s < 2; s++) {
			u8 a = d->str[s];
			if (!a || a > 6)
				continue;
			u64 addr = arg_n(sp->args, a);
			struct slot *sl = scratch();
			if (!sl)
				break;
			long n = bpf_probe_read_user_str(sl->data, STR_MAX, (void *)addr);
			if (n > 1 && (sp->empty & (1 << s))) {
				/* "" at entry, so no base was walked for it. */
				count_lost(L_READ);
				continue;
			}
			if (n < 0) {
				if (!EFAULTED && addr)
					count_lost(L_READ);
				continue;
			}
			if (n >= STR_MAX)
				count_lost(L_TRUNCATED);
			set_item(&sl->it, I_STR, n, addr, tid);
			send_slot(sl, &nitems);
		}
	}
	if (d->sock && d->sock <= 6) {
		u64 len = d->socklen && d->socklen <= 6 ? arg_n(sp->args, d->socklen) : 0;
		send_user_bytes(arg_n(sp->args, d->sock), len, tid, &nitems, EFAULTED);
	}
	switch (d->msg) {
	case M_MSG:
		send_msghdrs(sp->args[1], 1, STRIDE_MSG, 0, tid, &nitems, EFAULTED);
		break;
	case M_MMSG:
		send_msghdrs(sp->args[1], sp->args[2], STRIDE_MMSG, 0, tid, &nitems, EFAULTED);
		break;
	case M_MSG32:
		send_msghdrs(sp->args[1], 1, STRIDE_MSG32, 1, tid, &nitems, EFAULTED);
		break;
	case M_MMSG32:
		send_msghdrs(sp->args[1], sp->args[2], STRIDE_MMSG32, 1, tid, &nitems, EFAULTED);
		break;
	case M_SOCKETCALL: {
		u32 a[6] = {};
		u32 len = socketcall_size(sp->args[0]);
		if (!len)
			break;
		if (bpf_probe_read_user(a, len, (void *)sp->args[1]) != 0) {
			/* The kernel read them, unless the call failed with EFAULT. */
			if (!EFAULTED)
				count_lost(L_READ);
			break;
		}
		send_user_bytes(sp->args[1], len, tid, &nitems, EFAULTED);
		switch (sp->args[0]) {
		case SC_BIND:
		case SC_CONNECT:
			send_user_bytes(a[1], a[2], tid, &nitems, EFAULTED);
			break;
		case SC_SENDTO:
			send_user_bytes(a[4], a[5], tid, &nitems, EFAULTED);
			break;
		case SC_SENDMSG:
			send_msghdrs(a[1], 1, STRIDE_MSG32, 1, tid, &nitems, EFAULTED);
			break;
		case SC_SENDMMSG:
			send_msghdrs(a[1], a[2], STRIDE_MMSG32, 1, tid, &nitems, EFAULTED);
			break;
		}
		break;
	}
	}
	if (d->u64p && d->u64p <= 6)
		send_user_bytes(sp->args[(d->u64p - 1) & 7], 8, tid, &nitems, EFAULTED);
	/* A rename onto a name that did not exist made it (ptrace looks
	 * before the call; here the kernel's own lookup told). */
	if (sp->target == T_ABSENT)
		flags |= EV_ABSENT;
	if ((d->flags & (D_RETFD | D_CREATED)) && RET >= 0) {
		struct file *f = file_of((int)RET);
		if (f && (d->flags & D_CREATED) && (!d->oflags || (arg_n(sp->args, d->oflags) & O_CREAT)) &&
		    (BPF_CORE_READ(f, f_mode) & FMODE_CREATED))
			flags |= EV_CREATED;
		struct slot *sl = scratch();
		if (f && sl && (d->flags & D_RETFD)) {
			u32 n = walk(BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry), sl->data);
			/* A pipe or socket names no path (as under ptrace). */
			if (n != WALK_NONE) {
				set_item(&sl->it, I_FDPATH, n, RET, tid);
				send_slot(sl, &nitems);
			}
		}
	}
	if ((d->flags & D_SETID) && RET == 0) {
		struct slot *sl = scratch();
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		const struct cred *c = BPF_CORE_READ(task, cred);
		if (sl) {
			u32 *ids = (u32 *)sl->data;
			ids[0] = BPF_CORE_READ(c, uid.val);
			ids[1] = BPF_CORE_READ(c, euid.val);
			ids[2] = BPF_CORE_READ(c, suid.val);
			ids[3] = BPF_CORE_READ(c, fsuid.val);
			ids[4] = BPF_CORE_READ(c, gid.val);
			ids[5] = BPF_CORE_READ(c, egid.val);
			ids[6] = BPF_CORE_READ(c, sgid.val);
			ids[7] = BPF_CORE_READ(c, fsgid.val);
			struct group_info *g = BPF_CORE_READ(c, group_info);
			int ng = BPF_CORE_READ(g, ngroups);
			if (ng > NGROUPS_SENT) {
				count_lost(L_TRUNCATED);
				ng = NGROUPS_SENT;
			}
			if (ng < 0)
				ng = 0;
			for (int i = 0; i < NGROUPS_SENT; i++) {
				if (i >= ng)
					break;
				bpf_probe_read_kernel(&ids[8 + i], 4, &g->gid[i]);
			}
			set_item(&sl->it, I_CRED, 4 * (8 + ng), 0, tid);
			send_slot(sl, &nitems);
		}
	}

	nitems += idents_global(d->ident, RET, sp->ns, tid);
	if (d->ident == ID_NSNEW && RET == 0 && (sp->args[0] & CLONE_NEWNS))
		ns_copied_global((u64)ns_of(me), sp->ns);
	flags |= sp->ns;

	/* The event last: it closes the thread's items. */
	struct event *ev = bpf_ringbuf_reserve(&events, sizeof(struct event), 0);
	if (!ev) {
		count_lost(L_RINGBUF);
		return 0;
	}
	u64 pid_tgid = bpf_get_current_pid_tgid();
	ev->kind = E_SYSCALL;
	ev->size = sizeof(*ev);
	ev->tid = (u32)pid_tgid;
	ev->tgid = pid_tgid >> 32;
	ev->nr = sp->nr;
	ev->compat = sp->compat;
	ev->ret = RET;
	for (int i = 0; i < 6; i++)
		ev->args[i] = sp->args[i];
	ev->flags = flags;
	ev->nitems = nitems;
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	return 0;
#undef RET
#undef EFAULTED
}

/* security_inode_rename(old_dir, old_dentry, new_dir, new_dentry, flags)
 * is where every rename passes with its target looked up: a target
 * dentry without an inode means the rename creates its name. The first
 * call of a syscall is the one on the names the program gave (overlayfs
 * renames on its upper layer after it). x86_64 passes the fourth
 * argument in rcx, word 11 of struct pt_regs (user ABI, asm/ptrace.h). */
SEC("kprobe/security_inode_rename")
int rename_target(void *ctx)
{
	struct stash *st = bpf_task_storage_get(&stashes, bpf_get_current_task_btf(), 0, 0);
	if (!st || !st->valid || st->target != T_UNSEEN)
		return 0;
	struct dentry *target = (struct dentry *)((u64 *)ctx)[11];
	st->target = BPF_CORE_READ(target, d_inode) ? T_EXISTED : T_ABSENT;
	return 0;
}

/* A task event: E_FORK's `ret` is the parent's thread group, whose root
 * directory the child inherits (user space tracks chroot). */
static __always_inline void send_task_event(u32 kind, u32 tid, u32 tgid, u32 parent)
{
	struct event *ev = bpf_ringbuf_reserve(&events, sizeof(struct event), 0);
	if (!ev) {
		count_lost(L_RINGBUF);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->size = sizeof(*ev);
	ev->tid = tid;
	ev->tgid = tgid;
	ev->ret = parent;
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
}

/* args: parent task, child task. */
SEC("raw_tracepoint/sched_process_fork")
int process_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	u32 ptgid = BPF_CORE_READ(parent, tgid);
	u8 *state = bpf_map_lookup_elem(&traced, &ptgid);
	if (!state)
		return 0;
	u8 inherited = *state;
	u32 tgid = BPF_CORE_READ(child, tgid);
	u32 tid = BPF_CORE_READ(child, pid);
	bpf_map_update_elem(&traced, &tgid, &inherited, BPF_NOEXIST);
	/* clone(CLONE_NEWNS): the child copied its parent's namespace. */
	struct mnt_namespace *ns = ns_of(child);
	struct mnt_namespace *pns = ns_of(parent);
	if (ns != pns)
		ns_copied_global((u64)ns, ns_state(pns));
	send_task_event(E_FORK, tid, tgid, ptgid);
	return 0;
}

/* args: the exiting task (current). */
SEC("raw_tracepoint/sched_process_exit")
int process_exit(struct bpf_raw_tracepoint_args *ctx)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!bpf_map_lookup_elem(&traced, &tgid))
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	/* User space learns of the end by reaping (it is the subreaper). */
	if (BPF_CORE_READ(task, signal, live.counter) == 0)
		bpf_map_delete_elem(&traced, &tgid);
	return 0;
}

/* args: task, old pid, bprm. */
/* The path of a successful exec, from the kernel's copy: the program's
 * string is gone with its old memory, and reading it at entry fails when
 * its page is not resident yet (a child after fork). execveat relative to
 * a descriptor shows here as /dev/fd/N/PATH (user space undoes that). */
static __always_inline void exec_path(u32 tid, struct linux_binprm *bprm)
{
	struct big *b = bpf_task_storage_get(&bigs, bpf_get_current_task_btf(), 0, 0);
	if (!b)
		return;
	const char *name = BPF_CORE_READ(bprm, filename);
	long n = bpf_probe_read_kernel_str(b->s[SLOT_STR0].data, STR_MAX, name);
	if (n <= 0) {
		count_lost(L_READ);
		return;
	}
	if (n >= STR_MAX)
		count_lost(L_TRUNCATED);
	set_item(&b->s[SLOT_STR0].it, I_STR, n, b->s[SLOT_STR0].it.key, tid);
	b->interpreted = BPF_CORE_READ(bprm, interp) != name;
}

SEC("raw_tracepoint/sched_process_exec")
int process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	if (!traced_state())
		return 0;
	/* The thread keeps its storage when an exec from a non-leader thread
	 * gives it the leader's id. */
	exec_path(tid, bprm);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
