#include "app/cli_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "base/child_test_util.h"

namespace app_test {

std::string SpamsinkPath() {
  const char* dir = std::getenv("SPAMSINK_BUILD_DIR");
  return dir ? std::string(dir) + "/spamsink" : "";
}

RunResult RunSpamsink(const std::vector<std::string>& args, double seconds,
                      const std::string& cwd) {
  std::vector<std::string> argv = {SpamsinkPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  // SIGTERM at `seconds` (a server that started is stopped the way an
  // operator stops it), SIGKILL 5 s later.
  auto c = base_test::RunChild(argv, {seconds, seconds + 5}, cwd);
  RunResult r;
  r.status = c.status;
  r.signalled = c.signalled;
  r.out = std::move(c.out);
  r.err = std::move(c.err);
  return r;
}

Daemon::Daemon(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {SpamsinkPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int err[2];
  if (pipe(err) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(err[1], 2);
    close(err[0]);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  close(err[1]);
  fd_ = err[0];
}

Daemon::~Daemon() {
  if (Running()) Stop();
  if (fd_ >= 0) close(fd_);
}

std::string Daemon::WaitFor(const std::string& text, double seconds) {
  using Clock = std::chrono::steady_clock;
  const auto until =
      Clock::now() + std::chrono::milliseconds(int64_t(seconds * 1000));
  for (;;) {
    // Complete lines not yet looked at.
    for (size_t nl; (nl = err_.find('\n', scanned_)) != std::string::npos;) {
      std::string line = err_.substr(scanned_, nl - scanned_);
      scanned_ = nl + 1;
      if (line.find(text) != std::string::npos) return line;
    }
    if (fd_ < 0 || Clock::now() >= until) return "";
    pollfd p = {fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n <= 0) {
      close(fd_);
      fd_ = -1;
    } else {
      err_.append(buf, size_t(n));
    }
  }
}

int Daemon::Port(double seconds) {
  size_t keep = scanned_;
  scanned_ = 0;  // the listening line may have been read already
  std::string line = WaitFor("event=listening", seconds);
  if (scanned_ < keep) scanned_ = keep;
  auto colon = line.rfind(':');
  return colon == std::string::npos ? 0 : std::atoi(line.c_str() + colon + 1);
}

void Daemon::Signal(int sig) {
  if (pid_ > 0 && status_ == -2) kill(pid_, sig);
}

bool Daemon::Running() {
  if (pid_ <= 0 || status_ != -2) return false;
  int st = 0;
  if (waitpid(pid_, &st, WNOHANG) == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return false;
  }
  return true;
}

int Daemon::Stop() {
  if (!Running()) return status_;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100 && Running(); ++i) usleep(50000);
  if (Running()) kill(pid_, SIGKILL);
  int st = 0;
  if (status_ == -2 && waitpid(pid_, &st, 0) == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  WaitFor("\x01", 0.2);  // collect what it wrote last
  return status_;
}

std::string Banner(int port, double seconds) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    using Clock = std::chrono::steady_clock;
    const auto until =
        Clock::now() + std::chrono::milliseconds(int64_t(seconds * 1000));
    while (got.find("\r\n") == std::string::npos && Clock::now() < until) {
      pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[512];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, size_t(n));
    }
    (void)!write(fd, "QUIT\r\n", 6);
  }
  close(fd);
  auto end = got.find("\r\n");
  return end == std::string::npos ? "" : got.substr(0, end);
}

}  // namespace app_test
