// Test helper: runs a program to completion with its output captured and
// its time bounded. Used by the command-line tests of every module (the
// spamsink binary, smtpsend); never by the product.
#pragma once

#include <string>
#include <vector>

namespace base_test {

struct ChildResult {
  // Exit status; -1 when the process died of a signal or could not start.
  int status = -1;
  bool signalled = false;  // died of a signal
  bool killed = false;     // by our SIGKILL at the deadline
  std::string out, err;
};

struct ChildLimits {
  double term_after_s = -1;  // SIGTERM after this many seconds (< 0: never)
  double kill_after_s = 60;  // SIGKILL after this many seconds
};

// Runs argv[0] with argv in directory cwd ("" = ours), stdout and stderr
// captured until both close; the child (only this pid) is signalled at the
// limits. Reaps it before returning.
ChildResult RunChild(const std::vector<std::string>& argv,
                     const ChildLimits& limits, const std::string& cwd = "");

}  // namespace base_test
