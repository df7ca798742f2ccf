// Helpers for the loopback tests of smtpsend: free ports, child processes
// started and stopped by pid, output capture. Loopback only.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace sender_test {

// A port on 127.0.0.1 that was free a moment ago.
int FreePort();
// True once something accepts TCP connections on 127.0.0.1:port; polls
// every 10 ms for at most `max_ms`.
bool WaitForPort(int port, int max_ms);

struct Child {
  pid_t pid = -1;
};
// Starts argv[0] with argv (stdout/stderr to /dev/null).
Child Spawn(const std::vector<std::string>& argv);
// SIGTERM, then SIGKILL after 2 s; reaps the child. Only this pid.
void Stop(Child& c);

struct ProcResult {
  int status = -1;  // exit status, or -1 when killed or not run
  std::string out, err;
};
// Runs argv to completion, capturing stdout and stderr. The child is killed
// (by its pid) if it runs longer than max_s seconds.
ProcResult RunCapture(const std::vector<std::string>& argv, double max_s = 60);

// GET http://127.0.0.1:port/path; the whole response ("" on failure).
std::string HttpGet(int port, const std::string& path);
// The value of a Prometheus sample "name value" in text, or -1.
double MetricValue(const std::string& text, const std::string& name);

// $SPAMSINK_BUILD_DIR/<name>, or "" when the variable is unset.
std::string BuildPath(const std::string& name);

}  // namespace sender_test
