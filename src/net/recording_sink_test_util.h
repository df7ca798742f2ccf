// Test-only: a SessionSink that keeps every session summary it is given,
// for the server tests to read back (thread-safe: workers record, the test
// thread reads).
#ifndef SPAMSINK_NET_RECORDING_SINK_TEST_UTIL_H_
#define SPAMSINK_NET_RECORDING_SINK_TEST_UTIL_H_

#include <mutex>
#include <vector>

#include "net/server.h"
#include "peer/summary.h"

namespace net {

class RecordingSink final : public SessionSink {
 public:
  void Record(const peer::SessionSummary& r) override {
    std::lock_guard lock(mu_);
    records_.push_back(r);
  }
  std::vector<peer::SessionSummary> records() {
    std::lock_guard lock(mu_);
    return records_;
  }

 private:
  std::mutex mu_;
  std::vector<peer::SessionSummary> records_;
};

}  // namespace net

#endif  // SPAMSINK_NET_RECORDING_SINK_TEST_UTIL_H_
