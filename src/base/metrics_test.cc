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
  std::string text = RenderPrometheus(v, 7);
  EXPECT_NE(text.find("# TYPE spamsink_messages_total counter\n"),
            std::string::npos);
  EXPECT_NE(text.find("spamsink_messages_total 42\n"), std::string::npos);
  EXPECT_NE(text.find("spamsink_open_connections 7\n"), std::string::npos);
}

}  // namespace
}  // namespace base
