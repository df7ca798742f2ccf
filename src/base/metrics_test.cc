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
  std::vector<CounterValue> v = {
      {"messages_total", "messages", 42},
      {"connections_refused_total_cap_total", "total", 2},
      {"connections_refused_per_ip_cap_total", "per ip", 3},
      {"tarpit_delay_seconds_total", "delay", 2500000}};
  ServerGauges g;
  g.open_connections = 7;
  g.held_connections = 4;
  g.start_time = 1764201600;
  g.version = "1.2.3";
  std::string text = RenderPrometheus(ServerMetrics(v, g));
  EXPECT_EQ(text.substr(0, text.find("# HELP spamsink_connections_refused")),
            "# HELP spamsink_messages_total messages\n"
            "# TYPE spamsink_messages_total counter\n"
            "spamsink_messages_total 42\n"
            "# HELP spamsink_tarpit_delay_seconds_total delay\n"
            "# TYPE spamsink_tarpit_delay_seconds_total counter\n"
            "spamsink_tarpit_delay_seconds_total 2.5\n");
  // Refusals: one family with a reason label, one HELP and TYPE.
  EXPECT_NE(
      text.find("# TYPE spamsink_connections_refused_total counter\n"
                "spamsink_connections_refused_total{reason=\"total_cap\"}"
                " 2\n"
                "spamsink_connections_refused_total{reason=\"per_ip_cap\"}"
                " 3\n"),
      std::string::npos)
      << text;
  EXPECT_EQ(text.find("refused_total_cap_total"), std::string::npos);
  EXPECT_NE(text.find("spamsink_open_connections 7\n"), std::string::npos);
  EXPECT_NE(text.find("spamsink_held_connections 4\n"), std::string::npos);
  EXPECT_NE(text.find("spamsink_start_time_seconds 1764201600\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("spamsink_build_info{version=\"1.2.3\"} 1\n"),
            std::string::npos);
}

// The API's refusals (issue 13): one family with a reason label; the
// header deadline's cuts a counter of their own.
TEST(Metrics, ApiRefusalsAreOneFamily) {
  std::vector<CounterValue> v = {
      {"api_connections_refused_queue_full_total", "q", 1},
      {"api_connections_refused_per_ip_total", "p", 2},
      {"api_connections_refused_descriptors_total", "d", 3},
      {"api_header_timeouts_total", "h", 4}};
  ServerGauges g;
  g.memory_rss_bytes = 5;
  g.memory_limit_bytes = 6;
  std::string text = RenderPrometheus(ServerMetrics(v, g));
  EXPECT_NE(
      text.find(
          "# TYPE spamsink_api_connections_refused_total counter\n"
          "spamsink_api_connections_refused_total{reason=\"queue_full\"} 1\n"
          "spamsink_api_connections_refused_total{reason=\"per_ip_limit\"} "
          "2\n"
          "spamsink_api_connections_refused_total{reason=\"descriptors\"} "
          "3\n"),
      std::string::npos)
      << text;
  EXPECT_EQ(text.find("refused_queue_full_total"), std::string::npos);
  EXPECT_NE(text.find("spamsink_api_header_timeouts_total 4\n"),
            std::string::npos);
  EXPECT_NE(text.find("spamsink_memory_rss_bytes 5\n"), std::string::npos);
  EXPECT_NE(text.find("spamsink_memory_limit_bytes 6\n"), std::string::npos);
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
