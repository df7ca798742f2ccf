// Runs the built spamsink binary for the command-line tests: argv in,
// exit status and output out, bounded in time.
#pragma once

#include <string>
#include <vector>

namespace app_test {

struct RunResult {
  // Exit status; -1 when the process died of a signal (abort, or the
  // SIGKILL after a stuck SIGTERM).
  int status = -1;
  bool signalled = false;  // died of a signal it did not handle
  std::string out, err;
};

// $SPAMSINK_BUILD_DIR/spamsink, or "" when the variable is unset.
std::string SpamsinkPath();

// Runs the program with args in directory cwd ("" = ours). After `seconds`
// it is sent SIGTERM (and SIGKILL 5 s later): a server that started is
// stopped the way an operator would stop it.
RunResult RunSpamsink(const std::vector<std::string>& args, double seconds = 20,
                      const std::string& cwd = "");

// A spamsink server in the background, for tests that talk to it. The
// destructor stops it (SIGTERM, SIGKILL 5 s later) and reaps it.
class Daemon {
 public:
  explicit Daemon(const std::vector<std::string>& args);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Reads its stderr until a line containing text arrives (returned,
  // without the newline) or seconds pass (""). Lines read stay in err().
  std::string WaitFor(const std::string& text, double seconds = 10);
  // The SMTP port of its first "event=listening" line (0 if none yet).
  int Port(double seconds = 10);
  void Signal(int sig);
  // True while the process has not exited (reaps it if it has).
  bool Running();
  // SIGTERM, then waits: the exit status, -1 if killed by a signal.
  int Stop();
  const std::string& err() const { return err_; }

 private:
  int pid_ = -1;
  int fd_ = -1;  // its stderr
  int status_ = -2;
  std::string err_;
  size_t scanned_ = 0;
};

// Connects to 127.0.0.1:port and returns the first line the server sends
// (without CRLF), then says QUIT; "" on a failure or after seconds.
std::string Banner(int port, double seconds = 5);

}  // namespace app_test
