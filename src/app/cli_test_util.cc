#include "app/cli_test_util.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

namespace app_test {

std::string SpamsinkPath() {
  const char* dir = std::getenv("SPAMSINK_BUILD_DIR");
  return dir ? std::string(dir) + "/spamsink" : "";
}

RunResult RunSpamsink(const std::vector<std::string>& args, double seconds,
                      const std::string& cwd) {
  RunResult r;
  std::vector<std::string> argv = {SpamsinkPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int out[2], err[2];
  if (pipe(out) != 0 || pipe(err) != 0) return r;
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
  using Clock = std::chrono::steady_clock;
  const auto term_at =
      Clock::now() + std::chrono::milliseconds(int64_t(seconds * 1000));
  const auto kill_at = term_at + std::chrono::seconds(5);
  bool termed = false, killed = false;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    auto now = Clock::now();
    if (!termed && now > term_at) {
      kill(pid, SIGTERM);
      termed = true;
    }
    if (!killed && now > kill_at) {
      kill(pid, SIGKILL);
      killed = true;
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

}  // namespace app_test
