/*
 * floor: a do-nothing ptrace tracer, the cost of ptrace itself.
 *
 * It starts and follows the command exactly as `jailtrace record` does (see
 * src/core/trace/ptrace/mod.rs and src/core/trace/ptrace/sys.rs): PTRACE_SEIZE of a forked child
 * that waits on a pipe, the same seccomp filter (the x86_64 syscall list of
 * src/core/trace/arch.rs; foreign architectures and x32 calls always stop;
 * where jailtrace's filter also looks at arguments, as for a sendto without
 * an address or an fstat with a NULL path, and for i386 programs, which
 * jailtrace filters by their own list, the floor stops on every call), the
 * same CPU placement (--cpu tracer|same|none), fork/vfork/clone followed,
 * signals re-injected, group-stops kept with PTRACE_LISTEN. At every seccomp
 * stop it resumes with PTRACE_SYSCALL to take the syscall-exit stop too, then
 * PTRACE_CONT. It reads and records nothing, so `jailtrace / floor` is the
 * overhead of jailtrace's own work per stop.
 *
 * Usage: floor [--cpu tracer|same|none] [--all-syscalls] [--entry-only]
 *              [--] CMD [ARGS...]
 * --all-syscalls: every syscall stops (the filter is a bare RET_TRACE), to
 *   measure what the filter saves; --entry-only: no exit stops, to measure
 *   what they cost. Neither is the floor of the issue-6 targets.
 * Exit status: the command's, as a shell reports it.
 *
 * SYSCALLS is X86_64 of src/core/trace/arch.rs; a unit test there fails when
 * they differ.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

/* The native syscalls jailtrace's filter stops (src/core/trace/arch.rs,
 * X86_64; a unit test there checks that this list is the same). */
static const unsigned SYSCALLS[] = {
    2,   /* open */
    4,   /* stat */
    6,   /* lstat */
    21,  /* access */
    42,  /* connect */
    44,  /* sendto */
    46,  /* sendmsg */
    49,  /* bind */
    59,  /* execve */
    76,  /* truncate */
    80,  /* chdir */
    81,  /* fchdir */
    82,  /* rename */
    83,  /* mkdir */
    84,  /* rmdir */
    85,  /* creat */
    86,  /* link */
    87,  /* unlink */
    88,  /* symlink */
    89,  /* readlink */
    90,  /* chmod */
    92,  /* chown */
    94,  /* lchown */
    105, /* setuid */
    106, /* setgid */
    113, /* setreuid */
    114, /* setregid */
    116, /* setgroups */
    117, /* setresuid */
    119, /* setresgid */
    122, /* setfsuid */
    123, /* setfsgid */
    132, /* utime */
    133, /* mknod */
    137, /* statfs */
    155, /* pivot_root */
    161, /* chroot */
    166, /* umount */
    188, /* setxattr */
    189, /* lsetxattr */
    191, /* getxattr */
    192, /* lgetxattr */
    194, /* listxattr */
    195, /* llistxattr */
    197, /* removexattr */
    198, /* lremovexattr */
    204, /* sched_getaffinity */
    235, /* utimes */
    254, /* inotify_add_watch */
    257, /* openat */
    258, /* mkdirat */
    259, /* mknodat */
    260, /* fchownat */
    261, /* futimesat */
    262, /* newfstatat */
    263, /* unlinkat */
    264, /* renameat */
    265, /* linkat */
    266, /* symlinkat */
    267, /* readlinkat */
    268, /* fchmodat */
    269, /* faccessat */
    272, /* unshare */
    280, /* utimensat */
    301, /* fanotify_mark */
    303, /* name_to_handle_at */
    304, /* open_by_handle_at */
    307, /* sendmmsg */
    308, /* setns */
    316, /* renameat2 */
    322, /* execveat */
    332, /* statx */
    425, /* io_uring_setup */
    437, /* openat2 */
    439, /* faccessat2 */
    452, /* fchmodat2 */
    463, /* setxattrat */
    464, /* getxattrat */
    465, /* listxattrat */
    466, /* removexattrat */
};
#define NSYS (sizeof SYSCALLS / sizeof SYSCALLS[0])
#define X32_SYSCALL_BIT 0x40000000u

enum placement { P_TRACER, P_SAME, P_NONE };

static void die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(125);
}

/* The same program as src/core/trace/ptrace/seccomp.rs builds. */
static size_t build_filter(struct sock_filter *f, int all)
{
    size_t n = 0;
    if (all) {
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
        return n;
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                          AUDIT_ARCH_X86_64, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, nr));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K,
                                          X32_SYSCALL_BIT, 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    for (size_t i = 0; i < NSYS; i++)
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                              SYSCALLS[i], NSYS - i, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    return n;
}

/* CapEff bit 21 (CAP_SYS_ADMIN), read the way jailtrace reads it. */
static int has_cap_sys_admin(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long caps = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "CapEff: %llx", &caps) == 1)
            break;
    fclose(f);
    return (caps >> 21) & 1;
}

static int pin_to_current_cpu(void)
{
    int cpu = sched_getcpu();
    cpu_set_t set;
    if (cpu < 0)
        return -1;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

int main(int argc, char **argv)
{
    enum placement placement = P_TRACER;
    int all_syscalls = 0, entry_only = 0;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc) {
            const char *p = argv[++i];
            if (strcmp(p, "tracer") == 0)
                placement = P_TRACER;
            else if (strcmp(p, "same") == 0)
                placement = P_SAME;
            else if (strcmp(p, "none") == 0)
                placement = P_NONE;
            else {
                fprintf(stderr, "floor: --cpu: expected tracer, same or none, got '%s'\n", p);
                return 2;
            }
        } else if (strcmp(argv[i], "--all-syscalls") == 0) {
            all_syscalls = 1;
        } else if (strcmp(argv[i], "--entry-only") == 0) {
            entry_only = 1;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "floor: unknown option '%s'\n", argv[i]);
            return 2;
        } else {
            break;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "usage: floor [--cpu tracer|same|none] [--all-syscalls] [--entry-only] "
                        "[--] CMD [ARGS...]\n");
        return 2;
    }
    char **cmd = argv + i;

    cpu_set_t original;
    int have_original = sched_getaffinity(0, sizeof original, &original) == 0;
    int pinned = placement != P_NONE && pin_to_current_cpu() == 0;
    int restore_child = pinned && placement == P_TRACER && have_original;

    struct sock_filter filter[NSYS + 8];
    struct sock_fprog prog = {.len = (unsigned short)build_filter(filter, all_syscalls), .filter = filter};
    int no_new_privs = !has_cap_sys_admin();

    int go[2];
    if (pipe2(go, O_CLOEXEC) != 0)
        die("pipe");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        char b;
        close(go[1]);
        if (read(go[0], &b, 1) != 1)
            _exit(125);
        if (restore_child)
            sched_setaffinity(0, sizeof original, &original);
        if (no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            _exit(126);
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            _exit(126);
        execvp(cmd[0], cmd);
        fprintf(stderr, "floor: %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    close(go[0]);
    long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                PTRACE_O_TRACECLONE | PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL;
    if (ptrace(PTRACE_SEIZE, child, 0, opts) != 0) {
        kill(child, SIGKILL);
        die("PTRACE_SEIZE");
    }
    if (write(go[1], "g", 1) != 1)
        die("write");
    close(go[1]);

    int result = 125;
    for (;;) {
        int s;
        pid_t pid = waitpid(-1, &s, __WALL);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECHILD)
                break;
            die("waitpid");
        }
        if (WIFEXITED(s) || WIFSIGNALED(s)) {
            if (pid == child)
                result = WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
            continue;
        }
        if (!WIFSTOPPED(s))
            continue;
        int sig = WSTOPSIG(s);
        int event = (s >> 16) & 0xff;
        if (sig == (SIGTRAP | 0x80)) {
            /* syscall-exit stop after a seccomp stop */
            ptrace(PTRACE_CONT, pid, 0, 0);
        } else if (event == PTRACE_EVENT_STOP) {
            if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
                ptrace(PTRACE_LISTEN, pid, 0, 0);
            else
                ptrace(PTRACE_CONT, pid, 0, 0);
        } else if (sig == SIGTRAP && event == PTRACE_EVENT_SECCOMP) {
            ptrace(entry_only ? PTRACE_CONT : PTRACE_SYSCALL, pid, 0, 0);
        } else if (sig == SIGTRAP && event != 0) {
            /* fork, vfork, clone */
            ptrace(PTRACE_CONT, pid, 0, 0);
        } else {
            /* signal-delivery-stop: re-inject */
            ptrace(PTRACE_CONT, pid, 0, sig);
        }
        /* ESRCH from ptrace: the task died meanwhile; waitpid reports it. */
    }
    return result;
}
