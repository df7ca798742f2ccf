// Landlock in forked children: after RestrictFiles, every thread (those
// started before and after) gets EACCES outside the view and works inside.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <future>
#include <string>
#include <thread>

#include "app/sandbox.h"

namespace app {
namespace {

// 0 when writing path fails with EACCES, else 1.
int WriteRefused(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    close(fd);
    return 1;
  }
  return errno == EACCES ? 0 : 1;
}

// 0 when writing path works, else 1.
int WriteWorks(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 1;
  int ok = write(fd, "x", 1) == 1 ? 0 : 1;
  close(fd);
  return ok;
}

int ReadRefused(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return 1;
  }
  return errno == EACCES ? 0 : 1;
}

int ReadWorks(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 1;
  close(fd);
  return 0;
}

TEST(Landlock, EveryThreadIsConfinedToTheView) {
  if (LandlockAbi() <= 0) GTEST_SKIP() << "no Landlock in this kernel";
  auto base = std::filesystem::path(::testing::TempDir()) /
              ("landlock_" + std::to_string(getpid()));
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base / "allowed");
  std::filesystem::create_directories(base / "outside");
  const std::string allowed = (base / "allowed").string();
  const std::string outside = (base / "outside").string();
  pid_t pid = fork();
  if (pid == 0) {
    alarm(30);
    // As Serve does before its threads start (ctest may hand down a mask).
    sigset_t sig;
    sigemptyset(&sig);
    sigaddset(&sig, kLandlockSignal());
    pthread_sigmask(SIG_UNBLOCK, &sig, nullptr);
    // A thread started before the restriction, waiting for its turn.
    std::promise<void> go;
    std::promise<int> result;
    std::thread before([&] {
      go.get_future().wait();
      result.set_value(WriteRefused(outside + "/before") << 0 |
                       WriteWorks(allowed + "/before") << 1 |
                       ReadRefused("/etc/passwd") << 2 |
                       ReadWorks("/proc/self/status") << 3);
    });
    FileView view;
    view.read_write = {allowed, base.string() + "/does-not-exist"};
    view.read_only = {"/proc/self"};
    auto abi = RestrictFiles(view);
    if (!abi.ok()) {
      std::string m = "RestrictFiles: " + abi.error() + "\n";
      ssize_t ignored = write(2, m.data(), m.size());
      (void)ignored;
      _exit(100);
    }
    int bits = WriteRefused(outside + "/main") << 4 |
               WriteWorks(allowed + "/main") << 5 |
               ReadRefused("/etc/passwd") << 6;
    auto f = result.get_future();
    go.set_value();
    bits |= f.get();
    before.join();
    std::thread after([&] { bits |= WriteRefused(outside + "/after") << 7; });
    after.join();
    _exit(bits);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  // Each bit is one check (see above): 0 when all passed.
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(std::filesystem::exists(outside + "/before"));
  EXPECT_FALSE(std::filesystem::exists(outside + "/main"));
  EXPECT_TRUE(std::filesystem::exists(allowed + "/before"));
  // Without the restriction the same write works (the test can fail).
  EXPECT_EQ(WriteWorks(outside + "/unrestricted"), 0);
  std::filesystem::remove_all(base);
}

TEST(Landlock, TheServersViewFollowsItsSettings) {
  config::Config c;
  c.ledger.db_path = "/var/lib/spamsink/spamsink.db";
  c.ledger.spill_path = "/var/spool/spamsink/spill";
  c.capture.sample_every = 10;
  c.capture.dir = "/var/lib/spamsink/captures";
  c.api.token_file = "/etc/spamsink/api.token";
  FileView v = ServerFileView(c, "/etc/spamsink/spamsink.toml");
  EXPECT_EQ(v.read_write, (std::vector<std::string>{
                              "/var/lib/spamsink", "/var/spool/spamsink",
                              "/var/lib/spamsink/captures"}));
  EXPECT_EQ(v.read_only, (std::vector<std::string>{
                             "/etc/spamsink", "/etc/spamsink", "/proc/self"}));
  EXPECT_FALSE(v.reads_anywhere);
  c.ledger.store = "postgresql";
  v = ServerFileView(c, "");
  EXPECT_TRUE(v.reads_anywhere);
  EXPECT_EQ(v.read_only,
            (std::vector<std::string>{"/etc/spamsink", "/proc/self"}));
}

}  // namespace
}  // namespace app
