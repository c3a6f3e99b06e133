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
 * checked first, the pid set second. Anything lost (a full ring buffer, a
 * truncated string, a failed read) is counted in `lost`, never silent.
 *
 * Rebuild with bpf/build; the object is committed, so `cargo build`
 * needs no clang (see bpf/README.md).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

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
struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
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
	struct path pwd;
} __attribute__((preserve_access_index));
struct file {
	struct path f_path;
	unsigned int f_mode;
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
struct task_struct {
	struct thread_info thread_info;
	int pid;
	int tgid;
	struct fs_struct *fs;
	struct files_struct *files;
	struct signal_struct *signal;
	const struct cred *cred;
} __attribute__((preserve_access_index));
struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));
struct pt_regs {
	unsigned long bx, cx, dx, si, di, bp, r10, r8, r9;
} __attribute__((preserve_access_index));

#define TS_COMPAT 0x0002
#define FMODE_CREATED 0x100000
#define AT_FDCWD -100
#define EFAULT 14

/* Sizes. A path is at most PATH_MAX (4096) bytes with its NUL. */
#define STR_MAX 4096
#define WALK_MAX 4096
#define WALK_DEPTH 64
#define NAME_MAX_ 256
#define SOCK_MAX 112
#define NGROUPS_SENT 32

/* descs[compat * 512 + nr]: what to capture for a syscall. */
#define D_ON 1
#define D_EXEC 2      /* read the strings at entry */
#define D_SETID 4     /* send the credentials at exit */
#define D_RETFD 8     /* send the path of the returned descriptor */
#define D_CREATED 16  /* send whether the returned descriptor's file was created */
#define D_NOTE 32     /* no operands: the call itself is news (io_uring_setup) */
struct desc {
	u8 flags;
	u8 str[2];   /* argument index + 1 of a path string */
	u8 dirfd[2]; /* argument index + 1 of its dirfd; 0: the cwd */
	u8 sock;     /* argument index + 1 of a sockaddr */
	u8 socklen;  /* argument index + 1 of its length */
	u8 u64p;     /* argument index + 1 of a pointer to a u64 (open_how) */
	u8 fd;       /* argument index + 1 of a descriptor whose path is wanted */
	u8 pad[7];
};

/* Item kinds of an event (see src/core/trace/bpf/event.rs). */
#define I_STR 1   /* key: address; a NUL-terminated string */
#define I_BASE 2  /* key: dirfd (or AT_FDCWD); components, leaf first */
#define I_BYTES 3 /* key: address; raw bytes */
#define I_FDPATH 4 /* key: descriptor; components, leaf first */
#define I_CRED 5  /* 8 ids, then the supplementary groups */

#define E_SYSCALL 1
#define E_FORK 2
#define E_EXIT 3

/* Lost-data counters. */
#define L_RINGBUF 0
#define L_TRUNCATED 1
#define L_READ 2
#define L_STASH 3
#define L_DEPTH 4
#define L_N 5

struct event {
	u32 kind;
	u32 size;
	u32 tid;
	u32 tgid;
	u32 nr;
	u32 compat;
	s64 ret;
	u64 args[6];
	u32 flags; /* bit 0: the returned descriptor's file was created */
	u32 nitems;
};

struct item {
	u32 kind;
	u32 len;
	u64 key;
};

struct stash {
	u32 nr;
	u32 compat;
	u64 args[6];
	u32 have_big;
	u32 pad;
};

/* What entry has to hand to exit beyond the stash: walked bases, exec's
 * strings, a descriptor's path. Only inserted when needed. */
#define SLOT_BASE0 0
#define SLOT_BASE1 1
#define SLOT_STR0 2
#define SLOT_STR1 3
#define SLOT_FD 4
#define SLOT_SOCKBASE 5
#define SLOTS 6
struct big {
	u32 len[SLOTS];
	u64 key[SLOTS];
	char s[SLOTS][STR_MAX];
};

#define OUT_MAX 32704

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, struct desc);
} descs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u32); /* tgid */
	__type(value, u8);
} traced SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, u32); /* tid */
	__type(value, struct stash);
} stashes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, u32); /* tid */
	__type(value, struct big);
} bigs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct big);
} scratch_big SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, char[OUT_MAX]);
} scratch_out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L_N);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20);
} events SEC(".maps");

static __always_inline void count_lost(u32 what)
{
	u64 *n = bpf_map_lookup_elem(&lost, &what);
	if (n)
		*n += 1;
}

/* traced[tgid]: ARMED from registration to the first exec (jailtrace's
 * own child code before it is not the program's), RECORDING after. */
#define ARMED 1
#define RECORDING 2
static __always_inline u8 *traced_state(void)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	return bpf_map_lookup_elem(&traced, &tgid);
}

static __always_inline u64 arg_of(struct pt_regs *regs, int compat, int i)
{
	if (compat) {
		switch (i) {
		case 0: return (u32)BPF_CORE_READ(regs, bx);
		case 1: return (u32)BPF_CORE_READ(regs, cx);
		case 2: return (u32)BPF_CORE_READ(regs, dx);
		case 3: return (u32)BPF_CORE_READ(regs, si);
		case 4: return (u32)BPF_CORE_READ(regs, di);
		default: return (u32)BPF_CORE_READ(regs, bp);
		}
	}
	switch (i) {
	case 0: return BPF_CORE_READ(regs, di);
	case 1: return BPF_CORE_READ(regs, si);
	case 2: return BPF_CORE_READ(regs, dx);
	case 3: return BPF_CORE_READ(regs, r10);
	case 4: return BPF_CORE_READ(regs, r8);
	default: return BPF_CORE_READ(regs, r9);
	}
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

struct walk_ctx {
	struct vfsmount *vm;
	struct mount *mnt;
	struct dentry *d;
	char *out;
	u64 off;
	/* Field offsets, relocated in the caller: the loader relocates CO-RE
	 * accesses of the main programs only, not of bpf_loop callbacks. */
	u64 o_mnt_root, o_mnt_parent, o_mountpoint, o_mnt, o_parent, o_name;
};

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
	struct dentry *root = ptr_at(w->vm, w->o_mnt_root);
	if (w->d == root) {
		struct mount *parent = ptr_at(w->mnt, w->o_mnt_parent);
		if (parent == w->mnt)
			return 1;
		w->d = ptr_at(w->mnt, w->o_mountpoint);
		w->mnt = parent;
		w->vm = (struct vfsmount *)((char *)parent + w->o_mnt);
		return 0;
	}
	struct dentry *up = ptr_at(w->d, w->o_parent);
	if (up == w->d)
		return 1;
	u64 off = w->off;
	if (off > WALK_MAX - NAME_MAX_) {
		count_lost(L_TRUNCATED);
		return 1;
	}
	const unsigned char *name = ptr_at(w->d, w->o_name);
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
 * written (0 for the root). Mount points are crossed up to the root of
 * the mount namespace, as /proc/PID/cwd shows a path to a process outside
 * any chroot. bpf_loop: the verifier checks one step, not every depth.
 */
static __always_inline u32 walk(struct vfsmount *vm, struct dentry *d, char *out)
{
	struct walk_ctx w = {
		.vm = vm,
		.mnt = (struct mount *)((char *)vm - bpf_core_field_offset(struct mount, mnt)),
		.d = d,
		.out = out,
		.off = 0,
		.o_mnt_root = bpf_core_field_offset(struct vfsmount, mnt_root),
		.o_mnt_parent = bpf_core_field_offset(struct mount, mnt_parent),
		.o_mountpoint = bpf_core_field_offset(struct mount, mnt_mountpoint),
		.o_mnt = bpf_core_field_offset(struct mount, mnt),
		.o_parent = bpf_core_field_offset(struct dentry, d_parent),
		.o_name = bpf_core_field_offset(struct dentry, d_name) +
			  bpf_core_field_offset(struct qstr, name),
	};
	long steps = bpf_loop(WALK_DEPTH, walk_step, &w, 0);
	if (steps >= WALK_DEPTH)
		count_lost(L_DEPTH);
	return w.off;
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
	if (!f) {
		return 0xffffffff;
	}
	struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	return walk(vm, d, out);
}

/* Whether the user string at `addr` is relative (or unreadable now). */
static __always_inline int relative(u64 addr)
{
	char c = 0;
	if (bpf_probe_read_user(&c, 1, (void *)addr) < 0)
		return 1;
	return c != '/';
}

SEC("raw_tracepoint/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	u64 nr = ctx->args[1];
	/* The number first: every untraced process stops at one of these. */
	if (nr >= 512)
		return 0;
	u32 k = nr;
	struct desc *dn = bpf_map_lookup_elem(&descs, &k);
	k = nr + 512;
	struct desc *dc = bpf_map_lookup_elem(&descs, &k);
	if (!dn || !dc || !((dn->flags | dc->flags) & D_ON))
		return 0;
	u8 *state = traced_state();
	if (!state)
		return 0;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	u32 compat = (BPF_CORE_READ(task, thread_info.status) & TS_COMPAT) ? 1 : 0;
	struct desc *d = compat ? dc : dn;
	if (!(d->flags & D_ON))
		return 0;
	if (*state != RECORDING) {
		if (!(d->flags & D_EXEC))
			return 0;
		*state = RECORDING;
	}
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	struct stash st = {};
	st.nr = nr;
	st.compat = compat;
	for (int i = 0; i < 6; i++)
		st.args[i] = arg_of(regs, compat, i);

	u32 zero = 0;
	struct big *b = bpf_map_lookup_elem(&scratch_big, &zero);
	if (!b)
		return 0;
	int need = 0;
	for (int s = 0; s < 2; s++) {
		b->len[SLOT_BASE0 + s] = 0;
		b->len[SLOT_STR0 + s] = 0;
		u8 a = d->str[s];
		if (!a || a > 6)
			continue;
		u64 addr = st.args[(a - 1) & 7];
		if (d->flags & D_EXEC) {
			/* Gone after a successful exec: taken from the kernel's copy
			 * then (process_exec), from the program's memory at exit if
			 * it fails. Here only the address is kept. */
			b->key[SLOT_STR0 + s] = addr;
			need = 1;
		}
		if (relative(addr)) {
			u8 f = d->dirfd[s];
			int dirfd = f && f <= 6 ? (int)st.args[(f - 1) & 7] : AT_FDCWD;
			u32 n = walk_fd(dirfd, b->s[SLOT_BASE0 + s]);
			/* A bad dirfd: the call fails with EBADF, nothing to base. */
			b->len[SLOT_BASE0 + s] = n == 0xffffffff ? 0 : n | 0x80000000;
			b->key[SLOT_BASE0 + s] = (u64)(s64)dirfd;
			need = 1;
		}
	}
	b->len[SLOT_FD] = 0;
	if (d->fd && d->fd <= 6) {
		int fd = (int)st.args[(d->fd - 1) & 7];
		u32 n = walk_fd(fd, b->s[SLOT_FD]);
		b->len[SLOT_FD] = n == 0xffffffff ? 0 : n | 0x80000000;
		b->key[SLOT_FD] = (u64)(s64)fd;
		need = 1;
	}
	b->len[SLOT_SOCKBASE] = 0;
	if (d->sock && d->sock <= 6) {
		/* An AF_UNIX path that is relative needs the cwd. */
		struct {
			u16 family;
			char first;
		} head = {};
		u64 addr = st.args[(d->sock - 1) & 7];
		if (bpf_probe_read_user(&head, 3, (void *)addr) == 0 && head.family == 1 &&
		    head.first != '/' && head.first != 0) {
			u32 n = walk_fd(AT_FDCWD, b->s[SLOT_SOCKBASE]);
			b->len[SLOT_SOCKBASE] = n | 0x80000000;
			b->key[SLOT_SOCKBASE] = (u64)(s64)AT_FDCWD;
			need = 1;
		}
	}
	u32 tid = (u32)bpf_get_current_pid_tgid();
	if (need) {
		if (bpf_map_update_elem(&bigs, &tid, b, BPF_ANY) != 0) {
			count_lost(L_STASH);
			need = 0;
		}
	} else {
		bpf_map_delete_elem(&bigs, &tid);
	}
	st.have_big = need;
	if (bpf_map_update_elem(&stashes, &tid, &st, BPF_ANY) != 0)
		count_lost(L_STASH);
	return 0;
}

/* Appends an item header at `off`; returns the data offset. */
static __always_inline u64 item_at(char *out, u64 off, u32 kind, u32 len, u64 key)
{
	if (off > OUT_MAX - sizeof(struct item))
		return off;
	struct item *it = (struct item *)(out + off);
	it->kind = kind;
	it->len = len;
	it->key = key;
	return off + sizeof(struct item);
}

#define ALIGN8(x) (((x) + 7) & ~7)

/* Copies a slot of `big` into the event (length 0: the root). */
static __always_inline u64 put_slot(char *out, u64 off, struct big *b, int slot, u32 kind, u32 *nitems)
{
	u32 len = b->len[slot & 7];
	if (!len)
		return off;
	len &= 0x7fffffff;
	if (len > STR_MAX)
		len = STR_MAX;
	if (off > OUT_MAX - sizeof(struct item) - STR_MAX - 8)
		return off;
	u64 data = off + sizeof(struct item);
	item_at(out, off, kind, len, b->key[slot & 7]);
	barrier_var(data);
	if (data > OUT_MAX - STR_MAX)
		return off;
	if (len > 0 && len <= STR_MAX)
		bpf_probe_read_kernel(out + data, len, b->s[slot & 7]);
	*nitems += 1;
	return ALIGN8(data + len);
}

SEC("raw_tracepoint/sys_exit")
int sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct stash *st = bpf_map_lookup_elem(&stashes, &tid);
	if (!st)
		return 0;
	u32 zero = 0;
	char *out = bpf_map_lookup_elem(&scratch_out, &zero);
	if (!out) {
		bpf_map_delete_elem(&stashes, &tid);
		return 0;
	}
	struct event *ev = (struct event *)out;
	u64 pid_tgid = bpf_get_current_pid_tgid();
	ev->kind = E_SYSCALL;
	ev->tid = (u32)pid_tgid;
	ev->tgid = pid_tgid >> 32;
	ev->nr = st->nr;
	ev->compat = st->compat;
	ev->ret = (s64)ctx->args[1];
	for (int i = 0; i < 6; i++)
		ev->args[i] = st->args[i];
	ev->flags = 0;
	u32 nitems = 0;
	u64 off = sizeof(struct event);
	u32 k = st->nr + (st->compat ? 512 : 0);
	struct desc *d = bpf_map_lookup_elem(&descs, &k);
	int have_big = st->have_big;
	u64 args[6];
	for (int i = 0; i < 6; i++)
		args[i] = st->args[i];
	bpf_map_delete_elem(&stashes, &tid);
	if (!d)
		return 0;
	s64 ret = ev->ret;
	int efault = ret == -EFAULT;

	struct big *b = have_big ? bpf_map_lookup_elem(&bigs, &tid) : 0;
	if (b) {
		off = put_slot(out, off, b, SLOT_BASE0, I_BASE, &nitems);
		off = put_slot(out, off, b, SLOT_BASE1, I_BASE, &nitems);
		if (ret == 0) {
			off = put_slot(out, off, b, SLOT_STR0, I_STR, &nitems);
			off = put_slot(out, off, b, SLOT_STR1, I_STR, &nitems);
		}
		off = put_slot(out, off, b, SLOT_FD, I_FDPATH, &nitems);
		off = put_slot(out, off, b, SLOT_SOCKBASE, I_BASE, &nitems);
	}
	/* A failed exec left the program as it was: read its strings now,
	 * like any call's. */
	if (!(d->flags & D_EXEC) || ret < 0) {
		for (int s = 0; s < 2; s++) {
			u8 a = d->str[s];
			if (!a || a > 6)
				continue;
			u64 addr = args[(a - 1) & 7];
			if (off > OUT_MAX - sizeof(struct item) - STR_MAX - 8)
				break;
			u64 data = off + sizeof(struct item);
			barrier_var(data);
			if (data > OUT_MAX - STR_MAX)
				break;
			long n = bpf_probe_read_user_str(out + data, STR_MAX, (void *)addr);
			if (n < 0) {
				if (!efault && addr)
					count_lost(L_READ);
				continue;
			}
			if (n >= STR_MAX)
				count_lost(L_TRUNCATED);
			item_at(out, off, I_STR, n, addr);
			nitems++;
			off = ALIGN8(data + (u64)n);
		}
	}
	if (d->sock && d->sock <= 6 && off <= OUT_MAX - sizeof(struct item) - SOCK_MAX - 8) {
		u64 addr = args[(d->sock - 1) & 7];
		u64 len = d->socklen && d->socklen <= 6 ? args[(d->socklen - 1) & 7] : 0;
		if (len > SOCK_MAX)
			len = SOCK_MAX;
		if (addr && len > 0 && len <= SOCK_MAX) {
			u64 data = off + sizeof(struct item);
			barrier_var(data);
			if (data > OUT_MAX - SOCK_MAX)
				goto skip_sock;
			if (bpf_probe_read_user(out + data, len, (void *)addr) == 0) {
				item_at(out, off, I_BYTES, len, addr);
				nitems++;
				off = ALIGN8(data + len);
			} else if (!efault) {
				count_lost(L_READ);
			}
		}
	}
skip_sock:
	if (d->u64p && d->u64p <= 6 && off <= OUT_MAX - sizeof(struct item) - 8) {
		u64 addr = args[(d->u64p - 1) & 7];
		u64 data = off + sizeof(struct item);
		barrier_var(data);
		if (data <= OUT_MAX - 8 && bpf_probe_read_user(out + data, 8, (void *)addr) == 0) {
			item_at(out, off, I_BYTES, 8, addr);
			nitems++;
			off = data + 8;
		} else if (!efault) {
			count_lost(L_READ);
		}
	}
	if ((d->flags & (D_RETFD | D_CREATED)) && ret >= 0) {
		struct file *f = file_of((int)ret);
		if (f && (d->flags & D_CREATED) && (BPF_CORE_READ(f, f_mode) & FMODE_CREATED))
			ev->flags |= 1;
		u64 data = off + sizeof(struct item);
		barrier_var(data);
		if (f && (d->flags & D_RETFD) && data <= OUT_MAX - WALK_MAX - 8) {
			u32 n = walk(BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry), out + data);
			item_at(out, off, I_FDPATH, n, ret);
			nitems++;
			off = ALIGN8(data + (n & (WALK_MAX - 1)));
		}
	}
	if ((d->flags & D_SETID) && ret == 0 && off <= OUT_MAX - sizeof(struct item) - 4 * (8 + NGROUPS_SENT)) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		const struct cred *c = BPF_CORE_READ(task, cred);
		u64 data = off + sizeof(struct item);
		barrier_var(data);
		if (data > OUT_MAX - 4 * (8 + NGROUPS_SENT))
			goto send;
		u32 *ids = (u32 *)(out + data);
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
		item_at(out, off, I_CRED, 4 * (8 + ng), 0);
		nitems++;
		off = ALIGN8(off + sizeof(struct item) + 4 * (8 + ng));
	}
send:
	ev->nitems = nitems;
	if (off > OUT_MAX)
		off = OUT_MAX;
	ev->size = off;
	if (bpf_ringbuf_output(&events, out, off, 0) != 0)
		count_lost(L_RINGBUF);
	return 0;
}

static __always_inline void send_task_event(u32 kind, u32 tid, u32 tgid)
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
	bpf_ringbuf_submit(ev, 0);
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
	send_task_event(E_FORK, tid, tgid);
	return 0;
}

/* args: the exiting task (current). */
SEC("raw_tracepoint/sched_process_exit")
int process_exit(struct bpf_raw_tracepoint_args *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	u32 tid = (u32)pid_tgid, tgid = pid_tgid >> 32;
	if (!bpf_map_lookup_elem(&traced, &tgid))
		return 0;
	bpf_map_delete_elem(&stashes, &tid);
	bpf_map_delete_elem(&bigs, &tid);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ(task, signal, live.counter) == 0) {
		bpf_map_delete_elem(&traced, &tgid);
		send_task_event(E_EXIT, tid, tgid);
	}
	return 0;
}

/* args: task, old pid, bprm. */
/* The path of a successful exec, from the kernel's copy: the program's
 * string is gone with its old memory, and reading it at entry fails when
 * its page is not resident yet (a child after fork). execveat relative to
 * a descriptor shows here as /dev/fd/N/PATH (user space undoes that). */
static __always_inline void exec_path(u32 tid, struct linux_binprm *bprm)
{
	struct big *b = bpf_map_lookup_elem(&bigs, &tid);
	if (!b)
		return;
	const char *name = BPF_CORE_READ(bprm, filename);
	long n = bpf_probe_read_kernel_str(b->s[SLOT_STR0], STR_MAX, name);
	if (n <= 0) {
		count_lost(L_READ);
		return;
	}
	if (n >= STR_MAX)
		count_lost(L_TRUNCATED);
	b->len[SLOT_STR0] = n;
}

SEC("raw_tracepoint/sched_process_exec")
int process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	u32 old = (u32)ctx->args[1];
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	if (!traced_state())
		return 0;
	if (old != tid) {
		/* After an exec from a non-leader thread the thread has the
		 * leader's id: its entry state moves with it. */
		struct stash *st = bpf_map_lookup_elem(&stashes, &old);
		if (st) {
			struct stash copy = *st;
			bpf_map_update_elem(&stashes, &tid, &copy, BPF_ANY);
			bpf_map_delete_elem(&stashes, &old);
		}
		struct big *b = bpf_map_lookup_elem(&bigs, &old);
		if (b) {
			bpf_map_update_elem(&bigs, &tid, b, BPF_ANY);
			bpf_map_delete_elem(&bigs, &old);
		}
	}
	exec_path(tid, bprm);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
