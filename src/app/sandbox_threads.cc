// Per-thread-kind system call filters (issue 13, item 8): on top of the
// process-wide allow-list (sandbox.cc), each kind of thread is denied what
// only another kind needs. seccomp filters are per thread and stack; the
// strictest action wins, so a call denied here fails with EPERM in that
// thread even though the process-wide list allows it.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "app/sandbox.h"

namespace app {
namespace {

// Denied in every configuration.
constexpr const char* kWorkerFiles[] = {
    // Workers read and write sockets; files are the writer's and the API's
    // (capture.dir excepted: ThreadFilterOptions::worker_files).
    "open",      "openat",   "openat2",   "creat",     "fsync",
    "fdatasync", "truncate", "ftruncate", "fallocate", "unlink",
    "unlinkat",  "rename",   "renameat",  "renameat2", "mkdir",
    "mkdirat",   "rmdir",    "fchmod",    "fchmodat",  "fchown",
    "fchownat",  "link",     "linkat",    "symlink",   "symlinkat"};
constexpr const char* kWriterNetwork[] = {"accept", "accept4", "bind",
                                          "listen"};
// Only the PostgreSQL store's writer opens connections.
constexpr const char* kWriterConnect[] = {"socket", "connect"};
constexpr const char* kApiDenied[] = {
    "bind",   "listen",   "accept",    "accept4",  "fsync",   "fdatasync",
    "rename", "renameat", "renameat2", "mkdir",    "mkdirat", "rmdir",
    "link",   "linkat",   "symlink",   "symlinkat"};

struct Program {
  std::vector<sock_filter> code;
  sock_fprog prog{};
};
// Built by PrepareThreadFilters before the process-wide filter (libseccomp
// probes the kernel with calls that filter traps), never freed: the signal
// handler and later threads read them.
std::array<Program, base::kNumThreadKinds> g_programs;
std::atomic<bool> g_prepared{false};
// The kind whose filter this thread has (-1: none yet). A thread signalled
// before it declared its kind is narrowed when it declares it.
thread_local int t_narrowed = -1;
std::atomic<int> g_answered{0}, g_failed{0};

// Async-signal-safe: one system call on a program built beforehand.
void Narrow(base::ThreadKind kind) {
  const Program& p = g_programs[size_t(kind)];
  if (p.code.empty() || t_narrowed == int(kind)) return;
  t_narrowed = int(kind);
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p.prog) != 0) {
    g_failed.fetch_add(1);
  }
}

void OnNarrowSignal(int) {
  int saved = errno;
  Narrow(base::CurrentThreadKind());
  g_answered.fetch_add(1);
  errno = saved;
}

base::Result<Program> Build(const std::vector<std::string>& deny) {
  Program p;
  if (deny.empty()) return p;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return base::Status::Error("seccomp_init failed");
  int rc = 0;
  for (const auto& name : deny) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
  }
  int fds[2] = {-1, -1};
  if (rc == 0 && pipe(fds) != 0) rc = -errno;
  if (rc == 0) rc = seccomp_export_bpf(ctx, fds[1]);
  seccomp_release(ctx);
  if (fds[1] >= 0) close(fds[1]);
  std::string bytes;
  if (fds[0] >= 0) {
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0)
      bytes.append(buf, size_t(n));
    close(fds[0]);
  }
  if (rc != 0 || bytes.empty() || bytes.size() % sizeof(sock_filter) != 0) {
    return base::Status::Error(std::string("seccomp export: ") +
                               std::strerror(rc != 0 ? -rc : EINVAL));
  }
  p.code.resize(bytes.size() / sizeof(sock_filter));
  std::memcpy(p.code.data(), bytes.data(), bytes.size());
  return p;
}

}  // namespace

std::vector<std::string> ThreadKindDenyList(base::ThreadKind kind,
                                            const ThreadFilterOptions& o) {
  std::vector<std::string> out;
  switch (kind) {
    case base::ThreadKind::kSmtpWorker:
      if (!o.worker_files)
        out.assign(std::begin(kWorkerFiles), std::end(kWorkerFiles));
      break;
    case base::ThreadKind::kLedgerWriter:
      out.assign(std::begin(kWriterNetwork), std::end(kWriterNetwork));
      if (!o.store_network) {
        out.insert(out.end(), std::begin(kWriterConnect),
                   std::end(kWriterConnect));
      }
      break;
    case base::ThreadKind::kApi:
      out.assign(std::begin(kApiDenied), std::end(kApiDenied));
      break;
    case base::ThreadKind::kOther:
      break;
  }
  return out;
}

base::Status PrepareThreadFilters(const ThreadFilterOptions& options) {
  for (int k = 0; k < base::kNumThreadKinds; ++k) {
    auto p = Build(ThreadKindDenyList(base::ThreadKind(k), options));
    if (!p.ok()) return p.status();
    g_programs[size_t(k)] = std::move(p).value();
    auto& prog = g_programs[size_t(k)];
    prog.prog.len = static_cast<unsigned short>(prog.code.size());
    prog.prog.filter = prog.code.data();
  }
  g_prepared.store(true);
  return {};
}

base::Status RestrictThreadKinds() {
  if (!g_prepared.load()) {
    return base::Status::Error("thread filters: not prepared");
  }
  // Threads that declare their kind from now on narrow themselves.
  base::g_thread_kind_hook.store(&Narrow);
  Narrow(base::CurrentThreadKind());
  const int missing = SignalOtherThreads(OnNarrowSignal, g_answered);
  if (missing > 0 || g_failed.load() > 0) {
    return base::Status::Error(
        "thread filters: " + std::to_string(missing + g_failed.load()) +
        " thread(s) could not be narrowed");
  }
  return {};
}

}  // namespace app
