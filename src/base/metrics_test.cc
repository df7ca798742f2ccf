#include "base/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace base {
namespace {

TEST(Metrics, SumsShardsAcrossThreads) {
  uint64_t before = CounterTotal(Counter::kMessages);
  std::thread t([] {
    for (int i = 0; i < 1000; ++i) Count(Counter::kMessages);
  });
  Count(Counter::kMessages, 5);
  t.join();
  EXPECT_EQ(CounterTotal(Counter::kMessages), before + 1005);
}

TEST(Metrics, RendersPrometheusText) {
  std::vector<CounterValue> v = {{"messages_total", "messages", 42}};
  EXPECT_EQ(RenderPrometheus(ServerMetrics(v, 7)),
            "# HELP spamsink_messages_total messages\n"
            "# TYPE spamsink_messages_total counter\n"
            "spamsink_messages_total 42\n"
            "# HELP spamsink_open_connections SMTP connections open now\n"
            "# TYPE spamsink_open_connections gauge\n"
            "spamsink_open_connections 7\n");
}

TEST(Metrics, RendersGaugesAndHistograms) {
  Metric g;
  g.name = "ledger_pending_bytes";
  g.help = "bytes";
  g.type = Metric::Type::kGauge;
  g.value = 1.5;
  Metric h;
  h.name = "session_duration_seconds";
  h.help = "time";
  h.type = Metric::Type::kHistogram;
  h.bounds = {0.1, 5};
  h.buckets = {2, 0, 1};  // per bucket; rendered cumulative
  h.sum = 7.25;
  h.count = 3;
  EXPECT_EQ(RenderPrometheus({g, h}),
            "# HELP spamsink_ledger_pending_bytes bytes\n"
            "# TYPE spamsink_ledger_pending_bytes gauge\n"
            "spamsink_ledger_pending_bytes 1.5\n"
            "# HELP spamsink_session_duration_seconds time\n"
            "# TYPE spamsink_session_duration_seconds histogram\n"
            "spamsink_session_duration_seconds_bucket{le=\"0.1\"} 2\n"
            "spamsink_session_duration_seconds_bucket{le=\"5\"} 2\n"
            "spamsink_session_duration_seconds_bucket{le=\"+Inf\"} 3\n"
            "spamsink_session_duration_seconds_sum 7.25\n"
            "spamsink_session_duration_seconds_count 3\n");
}

}  // namespace
}  // namespace base
