/*
 * bpf_floor: what the bpf backend's way of seeing syscalls costs every other
 * process on the machine, with nothing recorded: the floor of issue 18's
 * "dd bs=1 while a recording runs" target.
 *
 *   bpf_floor raw       two empty programs on the raw syscall tracepoints
 *                       (sys_enter, sys_exit), as `record --backend bpf`
 *                       attaches its own: they run at every syscall of every
 *                       task, native and i386 alike
 *   bpf_floor syscalls  two empty programs on syscalls:sys_enter_openat and
 *                       sys_exit_openat only: a task that makes no openat
 *                       runs no program (but x86_64 never fires these
 *                       tracepoints for i386 calls, `int $0x80` from a
 *                       64-bit program included)
 *
 * It attaches, prints "attached" and waits until it is killed. Needs root.
 * No libbpf: each program is two instructions (r0 = 0; exit), loaded with
 * bpf(2). The syscalls variant reads the tracepoints' ids from tracefs,
 * mounted privately in a mount namespace of its own when the host has none
 * mounted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static int bpf(int cmd, union bpf_attr *attr) {
    return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

static int die(const char *what) {
    perror(what);
    exit(1);
}

/* An empty program of the given type: return 0. */
static int empty_prog(enum bpf_prog_type type) {
    struct bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT},
    };
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = type;
    a.insns = (unsigned long)insns;
    a.insn_cnt = 2;
    a.license = (unsigned long)"GPL";
    int fd = bpf(BPF_PROG_LOAD, &a);
    if (fd < 0) die("BPF_PROG_LOAD");
    return fd;
}

static void raw(const char *tp) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.raw_tracepoint.name = (unsigned long)tp;
    a.raw_tracepoint.prog_fd = empty_prog(BPF_PROG_TYPE_RAW_TRACEPOINT);
    if (bpf(BPF_RAW_TRACEPOINT_OPEN, &a) < 0) die(tp);
}

static const char *tracefs(void) {
    if (access("/sys/kernel/tracing/events/syscalls", F_OK) == 0) return "/sys/kernel/tracing";
    if (access("/sys/kernel/debug/tracing/events/syscalls", F_OK) == 0)
        return "/sys/kernel/debug/tracing";
    /* Mounted for this process only. */
    if (unshare(CLONE_NEWNS) != 0) die("unshare");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("mount private");
    if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) != 0) die("mount tracefs");
    return "/sys/kernel/tracing";
}

static void syscall_tp(const char *fs, const char *event) {
    char path[256], id[32] = "";
    snprintf(path, sizeof path, "%s/events/syscalls/%s/id", fs, event);
    int f = open(path, O_RDONLY);
    if (f < 0 || read(f, id, sizeof id - 1) <= 0) die(path);
    close(f);
    struct perf_event_attr pa;
    memset(&pa, 0, sizeof pa);
    pa.type = PERF_TYPE_TRACEPOINT;
    pa.size = sizeof pa;
    pa.config = strtoull(id, NULL, 10);
    pa.sample_period = 1;
    pa.wakeup_events = 1;
    int pfd = syscall(SYS_perf_event_open, &pa, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
    if (pfd < 0) die("perf_event_open");
    if (ioctl(pfd, PERF_EVENT_IOC_SET_BPF, empty_prog(BPF_PROG_TYPE_TRACEPOINT)) != 0)
        die("PERF_EVENT_IOC_SET_BPF");
    if (ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0) != 0) die("PERF_EVENT_IOC_ENABLE");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bpf_floor raw|syscalls\n");
        return 2;
    }
    if (strcmp(argv[1], "raw") == 0) {
        raw("sys_enter");
        raw("sys_exit");
    } else if (strcmp(argv[1], "syscalls") == 0) {
        const char *fs = tracefs();
        syscall_tp(fs, "sys_enter_openat");
        syscall_tp(fs, "sys_exit_openat");
    } else {
        fprintf(stderr, "usage: bpf_floor raw|syscalls\n");
        return 2;
    }
    printf("attached\n");
    fflush(stdout);
    for (;;) pause();
}
