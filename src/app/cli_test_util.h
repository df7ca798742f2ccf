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

}  // namespace app_test
