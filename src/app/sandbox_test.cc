// The sandbox in forked children: what it forbids kills the child with a
// log line naming the call; what the server does still works. (That the
// allow-list is complete is shown by the whole suite, whose servers run
// with server.sandbox = true.)
#include "app/sandbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "base/sanitizer.h"

namespace app {
namespace {

using ::testing::HasSubstr;

constexpr bool kSanitizer = base::kSanitizerBuild;

struct Outcome {
  int status = 0;
  std::string err;  // the child's stderr
};

// Runs body in a child that entered the sandbox first; body's return value
// is the exit code. Bounded: the child is killed after 10 s.
Outcome InSandbox(const std::function<int()>& body,
                  SandboxOptions options = {}) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    alarm(10);
    auto s = EnterSandbox(options);
    if (!s.ok()) {
      std::string m = "enter failed: " + s.message() + "\n";
      ssize_t ignored = write(2, m.data(), m.size());
      (void)ignored;
      _exit(100);
    }
    _exit(body());
  }
  close(fds[1]);
  Outcome out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.err.append(buf, n);
  close(fds[0]);
  waitpid(pid, &out.status, 0);
  return out;
}

TEST(Sandbox, ExecveKillsWithALogLine) {
  Outcome o = InSandbox([] {
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    execv("/bin/true", argv);
    return 3;  // not reached: refused calls do not return
  });
  ASSERT_TRUE(WIFSIGNALED(o.status)) << o.status << " " << o.err;
  EXPECT_EQ(WTERMSIG(o.status), SIGSYS);
  EXPECT_THAT(o.err, HasSubstr("level=error event=sandbox_violation "
                               "syscall=59 name=execve"));
}

TEST(Sandbox, PtraceAndForkAreRefused) {
  if (kSanitizer) GTEST_SKIP() << "the leak checker needs ptrace and fork";
  Outcome o = InSandbox([] { return int(ptrace(PTRACE_TRACEME, 0, 0, 0)); });
  ASSERT_TRUE(WIFSIGNALED(o.status)) << o.err;
  EXPECT_EQ(WTERMSIG(o.status), SIGSYS);
  EXPECT_THAT(o.err, HasSubstr("name=ptrace"));
  o = InSandbox([] { return int(fork()); });
  ASSERT_TRUE(WIFSIGNALED(o.status)) << o.err;
  EXPECT_EQ(WTERMSIG(o.status), SIGSYS);
  EXPECT_THAT(o.err, HasSubstr("name=clone"));
}

// Threads, files, loopback sockets and randomness still work, and
// /proc/self/status says what the sandbox set.
TEST(Sandbox, WhatTheServerDoesStillWorks) {
  std::string path =
      ::testing::TempDir() + "/sandbox_test_" + std::to_string(getpid());
  Outcome o = InSandbox([&path] {
    int ran = 0;
    std::thread t([&ran] { ran = 1; });
    t.join();
    if (ran != 1) return 10;
    {
      std::ofstream f(path);
      f << "x";
    }
    if (unlink(path.c_str()) != 0) return 11;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(s, 1) != 0) {
      return 12;
    }
    close(s);
    char r[8];
    if (getrandom(r, sizeof r, 0) != sizeof r) return 13;
    std::ifstream status("/proc/self/status");
    std::string line, out;
    while (std::getline(status, line)) {
      if (line.rfind("Seccomp:", 0) == 0 || line.rfind("CapEff:", 0) == 0 ||
          line.rfind("NoNewPrivs:", 0) == 0) {
        out += line + "\n";
      }
    }
    ssize_t ignored = write(2, out.data(), out.size());
    (void)ignored;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(o.status)) << o.err;
  EXPECT_EQ(WEXITSTATUS(o.status), 0) << o.err;
  EXPECT_THAT(o.err, HasSubstr("NoNewPrivs:\t1"));
  EXPECT_THAT(o.err, HasSubstr("Seccomp:\t2"));
  EXPECT_THAT(o.err, HasSubstr("CapEff:\t0000000000000000"));
}

// With a packet-drop rule owned, nft runs through sh at exit: execve stays
// allowed there.
TEST(Sandbox, ExecAllowedWhileAFirewallRuleIsOwned) {
  Outcome o = InSandbox(
      [] {
        FILE* p = popen("exit 7", "r");
        if (p == nullptr) return 20;
        int st = pclose(p);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 21;
      },
      {.allow_exec = true});
  ASSERT_TRUE(WIFEXITED(o.status)) << o.err;
  EXPECT_EQ(WEXITSTATUS(o.status), 7) << o.err;
}

TEST(Sandbox, AllowListNamesIoUringAndNoExec) {
  auto list = SandboxAllowList({});
  auto has = [&](const std::string& s) {
    return std::find(list.begin(), list.end(), s) != list.end();
  };
  EXPECT_TRUE(has("io_uring_enter"));
  EXPECT_TRUE(has("sendfile"));
  EXPECT_FALSE(has("execve"));
  auto exec = SandboxAllowList({.allow_exec = true});
  EXPECT_NE(std::find(exec.begin(), exec.end(), "execve"), exec.end());
}

}  // namespace
}  // namespace app
