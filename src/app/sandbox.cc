// server.sandbox: capabilities dropped, no_new_privs, and a seccomp
// allow-list (libseccomp) installed on every thread once the server has
// started. The list was drawn from strace -f of the whole ctest suite and
// the soak (bench/soak.py), both executors, the SQLite and PostgreSQL
// stores, TLS, the API's streamed exports, SIGHUP reloads and shutdown.
#include "app/sandbox.h"

#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/sanitizer.h"

namespace app {
namespace {

// Sanitizer runtimes stop the world for the leak check (clone without
// CLONE_THREAD, ptrace) and read their own /proc files: allowed there only.
constexpr bool kSanitizer = base::kSanitizerBuild;

// Allowed whatever their arguments.
constexpr const char* kAllowed[] = {
    // memory
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "mincore",
    "membarrier",
    // files (the ledger, TLS files, the token file and config on SIGHUP,
    // /proc/self/statm for server.memory_limit)
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "open",
    "openat",
    "openat2",
    "close",
    "close_range",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "lseek",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getdents64",
    "fsync",
    "fdatasync",
    "ftruncate",
    "fallocate",
    "fadvise64",
    "flock",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "fchmod",
    "fchown",
    "getcwd",
    "umask",
    "dup",
    "dup2",
    "dup3",
    "pipe",
    "pipe2",
    "fcntl",
    // sockets, readiness, timers
    "socket",
    "socketpair",
    "bind",
    "listen",
    "accept",
    "accept4",
    "connect",
    "shutdown",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "sendfile",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd2",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // threads, signals, time
    "futex",
    "futex_waitv",
    "set_robust_list",
    "get_robust_list",
    "set_tid_address",
    "rseq",
    "sched_yield",
    "sched_getaffinity",
    "nanosleep",
    "clock_nanosleep",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigtimedwait",
    "rt_sigpending",
    "sigaltstack",
    "restart_syscall",
    "tgkill",
    "tkill",
    "exit",
    "exit_group",
    // identity and limits (read only)
    "getpid",
    "gettid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getgroups",
    "getresuid",
    "getresgid",
    "getrandom",
    "uname",
    "sysinfo",
    "getrlimit",
    "prlimit64",
    "getrusage",
    "getpriority",
    "capget",
};

// With a packet-drop rule owned: sh and nft at exit (they inherit the
// filter: a new program's loader sets its thread pointer, sh forks and
// waits, nft talks netlink).
constexpr const char* kExecExtra[] = {"execve",  "arch_prctl", "wait4",
                                      "getpgrp", "setpgid",    "vfork"};

// ioctl requests: Asio's non-blocking switch and queue sizes, isatty.
constexpr unsigned long kIoctls[] = {FIONBIO, FIONREAD, FIOCLEX,   FIONCLEX,
                                     TCGETS,  TIOCOUTQ, TIOCGWINSZ};
// prctl options: thread names, and what glibc and OpenSSL ask.
constexpr int kPrctls[] = {PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE,
                           PR_SET_VMA, PR_CAPBSET_READ};

// Names for the SIGSYS handler, resolved before the filter is on (the
// handler may not allocate).
constexpr int kMaxSyscall = 512;
std::array<const char*, kMaxSyscall> g_names{};

void AppendNumber(char* buf, size_t* n, long v) {
  char tmp[24];
  int k = 0;
  if (v < 0) {
    buf[(*n)++] = '-';
    v = -v;
  }
  do {
    tmp[k++] = char('0' + v % 10);
    v /= 10;
  } while (v > 0 && k < 20);
  while (k > 0) buf[(*n)++] = tmp[--k];
}

void Append(char* buf, size_t* n, const char* s) {
  while (*s && *n < 400) buf[(*n)++] = *s++;
}

// A call outside the list: one log line, then death by SIGSYS (re-raised
// with the default action; it is delivered when the handler returns).
void OnSigsys(int, siginfo_t* info, void*) {
  char buf[512];
  size_t n = 0;
  Append(buf, &n, "level=error event=sandbox_violation syscall=");
  AppendNumber(buf, &n, info->si_syscall);
  if (info->si_syscall >= 0 && info->si_syscall < kMaxSyscall &&
      g_names[size_t(info->si_syscall)] != nullptr) {
    Append(buf, &n, " name=");
    Append(buf, &n, g_names[size_t(info->si_syscall)]);
  }
  Append(buf, &n,
         " hint=\"a system call outside the seccomp allow-list "
         "(server.sandbox): the process stops; report it\"\n");
  ssize_t ignored = ::write(2, buf, n);
  (void)ignored;
  signal(SIGSYS, SIG_DFL);
  raise(SIGSYS);
}

base::Status DropCapabilities(bool keep_net_admin) {
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (keep_net_admin && cap == CAP_NET_ADMIN) continue;
    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);  // EPERM without CAP_SETPCAP
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (keep_net_admin) {
    data[0].permitted = data[0].inheritable = 1u << CAP_NET_ADMIN;
  }
  if (syscall(SYS_capset, &header, data) != 0) {
    return base::Status::Error(std::string("capset: ") + std::strerror(errno));
  }
  if (keep_net_admin) {
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0);
  } else {
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  }
  return {};
}

}  // namespace

std::vector<std::string> SandboxAllowList(const SandboxOptions& options) {
  std::vector<std::string> out(std::begin(kAllowed), std::end(kAllowed));
  out.push_back(
      "ioctl (FIONBIO FIONREAD FIOCLEX FIONCLEX TCGETS TIOCOUTQ "
      "TIOCGWINSZ)");
  out.push_back(
      "prctl (PR_SET_NAME PR_GET_NAME PR_GET_DUMPABLE PR_SET_VMA "
      "PR_CAPBSET_READ)");
  if (options.allow_exec || kSanitizer) {
    out.push_back("clone, clone3");
  } else {
    out.push_back("clone (with CLONE_THREAD only; clone3 answers ENOSYS)");
  }
  if (options.allow_exec) {
    for (const char* s : kExecExtra) out.push_back(s);
  }
  out.push_back(
      "seccomp (SECCOMP_SET_MODE_FILTER, no flags: the per-thread "
      "filters)");
  return out;
}

base::Status EnterSandbox(const SandboxOptions& options) {
  if (auto s = DropCapabilities(options.allow_exec); !s.ok()) return s;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return base::Status::Error(std::string("PR_SET_NO_NEW_PRIVS: ") +
                               std::strerror(errno));
  }
  for (int nr = 0; nr < kMaxSyscall; ++nr) {
    if (g_names[size_t(nr)] == nullptr) {
      g_names[size_t(nr)] = seccomp_syscall_resolve_num_arch(
          SCMP_ARCH_NATIVE, nr);  // kept for the process's life
    }
  }
  struct sigaction sa {};
  sa.sa_sigaction = OnSigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, nullptr) != 0) {
    return base::Status::Error(std::string("sigaction: ") +
                               std::strerror(errno));
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
  if (ctx == nullptr) return base::Status::Error("seccomp_init failed");
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  auto allow = [&](const char* name) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return;  // not on this architecture
    if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  };
  for (const char* name : kAllowed) allow(name);
  for (unsigned long req : kIoctls) {
    if (rc == 0) {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                            SCMP_A1(SCMP_CMP_EQ, req));
    }
  }
  for (int opt : kPrctls) {
    if (rc == 0 && !kSanitizer) {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                            SCMP_A0(SCMP_CMP_EQ, scmp_datum_t(opt)));
    }
  }
  if (options.allow_exec || kSanitizer) {
    allow("clone");
    allow("clone3");
  } else {
    // Threads only: clone3's flags are out of the filter's reach, so it is
    // refused with ENOSYS and glibc falls back to clone.
    if (rc == 0) {
      rc = seccomp_rule_add(
          ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    }
    if (rc == 0) {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    }
  }
  if (options.allow_exec) {
    for (const char* s : kExecExtra) allow(s);
  }
  // A thread may add a filter of its own (RestrictThreadKinds), which can
  // only narrow it further; no flags (no TSYNC, no listener).
  if (rc == 0) {
    rc = seccomp_rule_add(
        ctx, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 2,
        SCMP_A0(SCMP_CMP_EQ, scmp_datum_t(SECCOMP_SET_MODE_FILTER)),
        SCMP_A1(SCMP_CMP_EQ, 0));
  }
  if (kSanitizer) {
    for (const char* s :
         {"ptrace", "wait4", "waitid", "prctl", "kill", "getdents", "fork",
          "process_vm_readv", "sched_getparam"}) {
      allow(s);
    }
  }
  if (rc == 0) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) {
    return base::Status::Error(std::string("seccomp: ") + std::strerror(-rc));
  }
  return {};
}

}  // namespace app
