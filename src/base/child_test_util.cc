#include "base/child_test_util.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

namespace base_test {

ChildResult RunChild(const std::vector<std::string>& argv,
                     const ChildLimits& limits, const std::string& cwd) {
  ChildResult r;
  if (argv.empty()) return r;
  std::vector<std::string> copy = argv;
  std::vector<char*> cargv;
  for (auto& a : copy) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int out[2], err[2];
  if (pipe(out) != 0) return r;
  if (pipe(err) != 0) {
    close(out[0]);
    close(out[1]);
    return r;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    close(out[0]);
    close(err[0]);
    return r;
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto at = [&](double s) {
    return start + std::chrono::milliseconds(int64_t(s * 1000));
  };
  const bool will_term = limits.term_after_s >= 0;
  const auto term_at = at(limits.term_after_s);
  const auto kill_at = at(limits.kill_after_s);
  bool termed = false;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    const auto now = Clock::now();
    if (will_term && !termed && now > term_at) {
      kill(pid, SIGTERM);
      termed = true;
    }
    if (!r.killed && now > kill_at) {
      kill(pid, SIGKILL);
      r.killed = true;
    }
    if (poll(fds, 2, 50) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, size_t(n));
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.status = WEXITSTATUS(status);
  r.signalled = WIFSIGNALED(status);
  return r;
}

}  // namespace base_test
