// Landlock: the file system view of every thread narrowed to what the
// running server still needs (app/sandbox.h, RestrictFiles). Raw system
// calls (linux/landlock.h): Debian 12 packages no liblandlock.
#include <dirent.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "app/sandbox.h"
#include "base/log.h"

namespace app {
namespace {

// The access rights of each ABI version (landlock(7)); one more bit per
// version 2 (REFER), 3 (TRUNCATE) and 5 (IOCTL_DEV).
constexpr uint64_t kFsV1 = (1ull << 13) - 1;  // EXECUTE .. MAKE_SYM
constexpr uint64_t kRefer = 1ull << 13;
constexpr uint64_t kTruncate = 1ull << 14;
constexpr uint64_t kIoctlDev = 1ull << 15;
constexpr uint64_t kExecute = 1ull << 0;
constexpr uint64_t kWriteFile = 1ull << 1;
constexpr uint64_t kReadFile = 1ull << 2;
constexpr uint64_t kReadDir = 1ull << 3;
constexpr uint64_t kMakeChar = 1ull << 6;
constexpr uint64_t kMakeBlock = 1ull << 11;
// What a rule on a file (not a directory) may grant.
constexpr uint64_t kFileRights =
    kExecute | kWriteFile | kReadFile | kTruncate | kIoctlDev;

// The rights this kernel's ABI knows.
uint64_t HandledFor(int abi) {
  uint64_t fs = kFsV1;
  if (abi >= 2) fs |= kRefer;
  if (abi >= 3) fs |= kTruncate;
  if (abi >= 5) fs |= kIoctlDev;
  return fs;
}

// Set by RestrictFiles for the signal handler that makes every other
// thread take the same ruleset (landlock_restrict_self acts on the calling
// thread only).
std::atomic<int> g_ruleset_fd{-1};
std::atomic<int> g_threads_done{0};
std::atomic<int> g_threads_failed{0};

void OnRestrictSignal(int) {
  int saved = errno;
  // no_new_privs is per thread too; it is required by landlock.
  bool ok = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
            syscall(SYS_landlock_restrict_self, g_ruleset_fd.load(), 0) == 0;
  if (!ok) g_threads_failed.fetch_add(1);
  g_threads_done.fetch_add(1);
  errno = saved;
}

// The thread ids of this process (/proc/self/task).
std::set<pid_t> Threads() {
  std::set<pid_t> out;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') {
      out.insert(pid_t(std::atoi(e->d_name)));
    }
  }
  closedir(d);
  return out;
}

base::Status AddRule(int ruleset, const std::string& path, uint64_t access,
                     uint64_t handled) {
  int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) {
    // A path that does not exist (yet) is left out: nothing to reach.
    if (errno == ENOENT) return {};
    return base::Status::Error(path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) access &= kFileRights;
  landlock_path_beneath_attr rule{};
  rule.allowed_access = access & handled;
  rule.parent_fd = fd;
  long rc = rule.allowed_access == 0
                ? 0
                : syscall(SYS_landlock_add_rule, ruleset,
                          LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
  int e = errno;
  close(fd);
  if (rc != 0) {
    return base::Status::Error(path +
                               ": landlock_add_rule: " + std::strerror(e));
  }
  return {};
}

}  // namespace

int LandlockAbi() {
  long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0,
                     LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : int(abi);
}

base::Result<int> RestrictFiles(const FileView& view) {
  const int abi = LandlockAbi();
  if (abi <= 0) {
    return base::Status::Error(
        std::string("Landlock unavailable (") + std::strerror(errno) +
        "): the kernel lacks it or it is not in its lsm= list");
  }
  uint64_t handled = HandledFor(abi);
  // Reads left to the kernel's usual checks when programs must still run
  // (sh and nft at exit read their libraries): only changes are confined.
  if (view.reads_anywhere) {
    handled &= ~(kExecute | kReadFile | kReadDir);
  }
  landlock_ruleset_attr attr{};
  attr.handled_access_fs = handled;
  int ruleset = int(syscall(SYS_landlock_create_ruleset, &attr,
                            sizeof attr.handled_access_fs, 0));
  if (ruleset < 0) {
    return base::Status::Error(std::string("landlock_create_ruleset: ") +
                               std::strerror(errno));
  }
  // Read-write: all but running programs and making device nodes.
  const uint64_t rw = handled & ~(kExecute | kMakeChar | kMakeBlock);
  const uint64_t ro = kReadFile | kReadDir;
  base::Status s;
  for (const auto& p : view.read_write) {
    if (s.ok()) s = AddRule(ruleset, p, rw, handled);
  }
  for (const auto& p : view.read_only) {
    if (s.ok()) s = AddRule(ruleset, p, ro, handled);
  }
  if (!s.ok()) {
    close(ruleset);
    return s;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
    int e = errno;
    close(ruleset);
    return base::Status::Error(std::string("landlock_restrict_self: ") +
                               std::strerror(e));
  }
  // Every other thread: a signal whose handler restricts it. Threads they
  // start later inherit the domain; a thread started by one not yet
  // restricted is caught by the next round. Bounded: 20 rounds, each
  // waiting up to 5 s (a loaded machine may not run a thread for seconds).
  g_ruleset_fd.store(ruleset);
  const int missing = SignalOtherThreads(OnRestrictSignal, g_threads_done);
  close(ruleset);
  if (missing > 0 || g_threads_failed.load() > 0) {
    return base::Status::Error(
        "landlock: " + std::to_string(missing + g_threads_failed.load()) +
        " thread(s) could not be restricted");
  }
  return abi;
}

}  // namespace app

namespace app {
namespace {
std::string DirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}
}  // namespace

FileView ServerFileView(const config::Config& cfg,
                        const std::string& config_file) {
  FileView v;
  const auto& l = cfg.ledger;
  if (l.enabled && l.store == "sqlite" && !l.db_path.empty() &&
      l.db_path != ":memory:") {
    // The database, its WAL and shm, the default spill file, SQLite's
    // temporary files (SQLITE_TMPDIR, set by Serve) and the STARTTLS
    // snakeoil kept beside it.
    v.read_write.push_back(DirectoryOf(l.db_path));
  }
  if (l.enabled && !l.spill_path.empty()) {
    v.read_write.push_back(DirectoryOf(l.spill_path));
  }
  if (cfg.capture.sample_every > 0 && !cfg.capture.dir.empty()) {
    v.read_write.push_back(cfg.capture.dir);
  }
  // What a SIGHUP reads again: the configuration file and the token file,
  // by directory (an editor or a rotation replaces the file).
  if (!config_file.empty()) v.read_only.push_back(DirectoryOf(config_file));
  if (!cfg.api.token_file.empty()) {
    v.read_only.push_back(DirectoryOf(cfg.api.token_file));
  }
  // The resident size (server.memory_limit, the console) and the threads.
  v.read_only.push_back("/proc/self");
  // libpq reads its files (~/.pgpass, certificates) at every reconnect.
  v.reads_anywhere = l.enabled && l.store == "postgresql";
  return v;
}

int SignalOtherThreads(void (*handler)(int), const std::atomic<int>& answered) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  const int sig = kLandlockSignal();
  sigaction(sig, &sa, &old);
  std::set<pid_t> done = {pid_t(syscall(SYS_gettid))};
  int missing = 0;
  for (int round = 0; round < 20; ++round) {
    std::set<pid_t> now = Threads(), sent;
    // Counted before sending: a handler may run before the count is read.
    const int before = answered.load();
    for (pid_t t : now) {
      if (done.count(t) != 0) continue;
      if (syscall(SYS_tgkill, getpid(), t, sig) == 0) sent.insert(t);
    }
    if (sent.empty()) break;
    const int want = before + int(sent.size());
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (answered.load() < want && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    missing = want - answered.load();
    done.insert(sent.begin(), sent.end());
    if (missing > 0) break;  // a thread that blocks the signal
  }
  sigaction(sig, &old, nullptr);
  return missing;
}

}  // namespace app
