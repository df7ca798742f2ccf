// Per-thread-kind filters (issue 13 item 8), in a forked child: after the
// process-wide sandbox, an SMTP worker cannot open or sync files, the ledger
// writer can but cannot open connections or accept, an API worker cannot
// bind or sync; a thread that declares its kind later is narrowed too.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "app/sandbox.h"
#include "base/sanitizer.h"
#include "base/thread_kind.h"

namespace app {
namespace {

using base::ThreadKind;

constexpr bool kSanitizer = base::kSanitizerBuild;

// What each call gave in one thread: 0 or the errno.
struct Calls {
  int open = -1, fsync = -1, socket = -1, connect = -1, bind = -1;
};

std::string Line(const char* who, const Calls& c) {
  return std::string(who) + " open=" + std::to_string(c.open) +
         " fsync=" + std::to_string(c.fsync) +
         " socket=" + std::to_string(c.socket) +
         " connect=" + std::to_string(c.connect) +
         " bind=" + std::to_string(c.bind) + "\n";
}

Calls Try(int file_fd, uint16_t port) {
  Calls c;
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  c.open = fd >= 0 ? 0 : errno;
  if (fd >= 0) close(fd);
  c.fsync = fsync(file_fd) == 0 ? 0 : errno;
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  c.socket = s >= 0 ? 0 : errno;
  if (s >= 0) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c.connect =
        connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 ? 0 : errno;
    close(s);
  }
  int b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (b >= 0) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c.bind =
        bind(b, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 ? 0 : errno;
    close(b);
  }
  return c;
}

// Runs the child; returns its stderr (one line per thread) and status.
std::string RunChild(const ThreadFilterOptions& options, int* status) {
  // A listener the threads connect to (the backlog accepts for us).
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(listen(l, 64), 0);
  getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  const uint16_t port = ntohs(a.sin_port);
  std::string file = ::testing::TempDir() + "/spamsink_thread_filters_" +
                     std::to_string(getpid());
  int file_fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  EXPECT_GE(file_fd, 0);
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    alarm(10);
    std::atomic<bool> go{false};
    Calls got[5];
    auto body = [&](ThreadKind kind, int slot) {
      base::SetThreadKind(kind);
      // Bounded: the parent's alarm ends the child after 10 s anyway.
      for (int i = 0; i < 10000 && !go.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      got[slot] = Try(file_fd, port);
    };
    std::thread worker(body, ThreadKind::kSmtpWorker, 0);
    std::thread writer(body, ThreadKind::kLedgerWriter, 1);
    std::thread api(body, ThreadKind::kApi, 2);
    std::thread other(body, ThreadKind::kOther, 3);
    auto fail = [](const std::string& what, const base::Status& s) {
      std::string m = what + " failed: " + s.message() + "\n";
      ssize_t ignored = write(2, m.data(), m.size());
      (void)ignored;
      _exit(100);
    };
    if (auto s = PrepareThreadFilters(options); !s.ok()) fail("prepare", s);
    if (auto s = EnterSandbox({}); !s.ok()) fail("enter", s);
    if (auto s = RestrictThreadKinds(); !s.ok()) fail("restrict", s);
    go = true;
    worker.join();
    writer.join();
    api.join();
    other.join();
    // Started after the sandbox: narrowed when it declares its kind.
    std::thread late(body, ThreadKind::kSmtpWorker, 4);
    late.join();
    std::string out = Line("worker", got[0]) + Line("writer", got[1]) +
                      Line("api", got[2]) + Line("other", got[3]) +
                      Line("late_worker", got[4]) +
                      Line("main", Try(file_fd, port));
    ssize_t ignored = write(2, out.data(), out.size());
    (void)ignored;
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, size_t(n));
  close(fds[0]);
  waitpid(pid, status, 0);
  close(l);
  close(file_fd);
  unlink(file.c_str());
  return err;
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

TEST(ThreadFilters, EachKindIsDeniedWhatOnlyAnotherNeeds) {
  if (kSanitizer) GTEST_SKIP() << "the sanitizer's own calls";
  int status = 0;
  std::string out = RunChild({}, &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  const std::string eperm = std::to_string(EPERM);
  // The worker: no files (open, fsync); sockets are its business.
  EXPECT_TRUE(Has(out, "worker open=" + eperm + " fsync=" + eperm +
                           " socket=0 connect=0 bind=0"))
      << out;
  EXPECT_TRUE(Has(out, "late_worker open=" + eperm + " fsync=" + eperm)) << out;
  // The writer: files yes; no sockets (SQLite store), no bind.
  EXPECT_TRUE(
      Has(out, "writer open=0 fsync=0 socket=" + eperm + " connect=-1 bind=-1"))
      << out;
  // The API: reads files and connects, never binds or syncs.
  EXPECT_TRUE(Has(
      out, "api open=0 fsync=" + eperm + " socket=0 connect=0 bind=" + eperm))
      << out;
  // Threads of no kind keep the process-wide list.
  EXPECT_TRUE(Has(out, "other open=0 fsync=0 socket=0 connect=0 bind=0"))
      << out;
  EXPECT_TRUE(Has(out, "main open=0 fsync=0 socket=0 connect=0 bind=0")) << out;
}

TEST(ThreadFilters, CaptureAndPostgresLoosenThem) {
  if (kSanitizer) GTEST_SKIP() << "the sanitizer's own calls";
  int status = 0;
  std::string out =
      RunChild({.worker_files = true, .store_network = true}, &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  const std::string eperm = std::to_string(EPERM);
  EXPECT_TRUE(Has(out, "worker open=0 fsync=0 socket=0 connect=0 bind=0"))
      << out;
  EXPECT_TRUE(
      Has(out, "writer open=0 fsync=0 socket=0 connect=0 bind=" + eperm))
      << out;
}

TEST(ThreadFilters, DenyListsAreAsDocumented) {
  auto worker = ThreadKindDenyList(ThreadKind::kSmtpWorker, {});
  EXPECT_NE(std::find(worker.begin(), worker.end(), "openat"), worker.end());
  EXPECT_TRUE(
      ThreadKindDenyList(ThreadKind::kSmtpWorker, {.worker_files = true})
          .empty());
  auto writer = ThreadKindDenyList(ThreadKind::kLedgerWriter, {});
  EXPECT_NE(std::find(writer.begin(), writer.end(), "connect"), writer.end());
  EXPECT_NE(std::find(writer.begin(), writer.end(), "accept4"), writer.end());
  EXPECT_TRUE(ThreadKindDenyList(ThreadKind::kOther, {}).empty());
}

}  // namespace
}  // namespace app
