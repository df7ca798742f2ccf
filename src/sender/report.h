// Renders a finished run: the original smtpsend's three closing lines, the
// detailed report, the JSON document, and the live progress line. Pure
// functions of their inputs.
#pragma once

#include <string>

#include "sender/stats.h"

namespace sender {

struct RunInfo {
  std::string target;  // "host:port"
  int senders = 0;     // -s (closed loop) or the session cap (open loop)
  int messages_per_connection = 1;
  double rate = 0;          // open loop: messages/s; 0 = closed loop
  double elapsed_s = 0;     // first connect .. last session closed
  double client_cpu_s = 0;  // user + system CPU of smtpsend itself
  int threads = 1;
};

// "Sent N messages in S seconds" and the two lines that follow, exactly in
// the original's shape, with sub-second precision. N counts accepted
// messages; with none, the rates read 0 instead of inf/nan.
std::string RenderClassic(const Stats& s, const RunInfo& info);
// Everything else: counts by class, throughput, latency percentiles per
// phase, server-held time, TCP retransmissions.
std::string RenderDetails(const Stats& s, const RunInfo& info);
// One JSON object with all of the above (--json).
std::string RenderJson(const Stats& s, const RunInfo& info);
// "  1234 msg/s  5000/10000 done  3 errors  100 open" (no newline).
std::string RenderProgress(double rate, uint64_t done, int64_t total,
                           uint64_t bad, uint64_t open);

}  // namespace sender
