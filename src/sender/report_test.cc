#include "sender/report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace sender {
namespace {

Stats Sample() {
  Stats s;
  s.messages[int(Outcome::kAccepted)] = 90;
  s.messages[int(Outcome::kRejectedPermanent)] = 6;
  s.messages[int(Outcome::kFailedTimeout)] = 4;
  s.sessions[int(Outcome::kAccepted)] = 9;
  s.sessions[int(Outcome::kFailedTimeout)] = 1;
  s.content_bytes = 2000000;
  for (int i = 1; i <= 100; ++i)
    s.phase[int(Phase::kEndOfData)].Record(int64_t(i) * 1000);
  return s;
}

TEST(ReportTest, ClassicLinesKeepTheirShape) {
  RunInfo info;
  info.elapsed_s = 2.5;
  std::string out = RenderClassic(Sample(), info);
  EXPECT_EQ(out,
            "Sent 90 messages in 2.500 seconds\n"
            "Sending rate:  2160.00 messages/minute,    36.00 "
            "messages/second\n"
            "Average delivery time: 0.027778 seconds/message\n");
}

TEST(ReportTest, ZeroElapsedNeverDividesByZero) {
  RunInfo info;
  std::string out = RenderClassic(Stats(), info);
  EXPECT_EQ(out.find("inf"), std::string::npos);
  EXPECT_EQ(out.find("nan"), std::string::npos);
}

TEST(ReportTest, JsonCarriesCountsAndPercentiles) {
  RunInfo info;
  info.elapsed_s = 2;
  info.target = "127.0.0.1:25";
  auto j = nlohmann::json::parse(RenderJson(Sample(), info));
  EXPECT_EQ(j["messages"]["accepted"], 90);
  EXPECT_EQ(j["messages"]["permanent"], 6);
  EXPECT_EQ(j["messages"]["timeout"], 4);
  EXPECT_EQ(j["messages"]["total"], 100);
  EXPECT_EQ(j["messages"]["failed_unexpectedly"], 10);
  EXPECT_EQ(j["sessions"]["total"], 10);
  EXPECT_DOUBLE_EQ(j["rates"]["messages_per_s"].get<double>(), 45);
  EXPECT_DOUBLE_EQ(j["rates"]["mb_per_s"].get<double>(), 1);
  EXPECT_NEAR(j["latency_ms"]["end_of_data"]["p50"].get<double>(), 0.05,
              0.05 / 64);
  EXPECT_NEAR(j["latency_ms"]["end_of_data"]["p99"].get<double>(), 0.099,
              0.099 / 64);
}

TEST(ReportTest, DetailsNameEveryClass) {
  RunInfo info;
  info.elapsed_s = 1;
  std::string out = RenderDetails(Sample(), info);
  for (const char* w : {"accepted 90", "permanent 6", "timeout 4",
                        "end_of_data", "held by server", "retransmissions"})
    EXPECT_NE(out.find(w), std::string::npos) << w;
}

}  // namespace
}  // namespace sender
