#include "sender/plan.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace sender {
namespace {

TEST(LoadPlanTest, CountedPlanHandsOutExactlyTotal) {
  LoadPlan plan(1000);
  std::atomic<int> got{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (plan.Claim()) got++;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(got.load(), 1000);
  EXPECT_EQ(plan.claimed(), 1000);
  EXPECT_TRUE(plan.exhausted());
}

// -n counts accepted messages: a failed one is tried again in its place,
// at most total times, so a server refusing everything still ends the run.
TEST(LoadPlanTest, FailedMessagesAreRetriedAtMostTotalTimes) {
  LoadPlan plan(2);
  EXPECT_TRUE(plan.Claim());
  EXPECT_TRUE(plan.Claim());
  EXPECT_FALSE(plan.Claim());
  plan.Unclaim();  // one failed
  EXPECT_FALSE(plan.exhausted());
  EXPECT_TRUE(plan.Claim());
  EXPECT_FALSE(plan.Claim());
  plan.Unclaim();
  EXPECT_TRUE(plan.Claim());
  plan.Unclaim();  // a third failure: retries are used up
  EXPECT_FALSE(plan.Claim());
  EXPECT_TRUE(plan.exhausted());
}

TEST(LoadPlanTest, StopEndsUnboundedPlan) {
  LoadPlan plan(0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(plan.Claim());
  EXPECT_FALSE(plan.exhausted());
  plan.Stop();
  EXPECT_FALSE(plan.Claim());
  EXPECT_TRUE(plan.exhausted());
}

TEST(AddressPoolTest, CyclesThroughHostAddresses) {
  AddressPool pool(*base::Cidr::Parse("127.1.0.0/30"));
  ASSERT_EQ(pool.size(), 3u);
  EXPECT_EQ(pool.At(0).ToString(), "127.1.0.1");
  EXPECT_EQ(pool.At(2).ToString(), "127.1.0.3");
  EXPECT_EQ(pool.At(3).ToString(), "127.1.0.1");
  AddressPool big(*base::Cidr::Parse("127.0.0.0/8"));
  EXPECT_EQ(big.size(), (1u << 24) - 1);
  EXPECT_EQ(big.At(255).ToString(), "127.0.1.0");
  AddressPool one(*base::Cidr::Parse("127.0.0.9"));
  EXPECT_EQ(one.size(), 1u);
  EXPECT_EQ(one.At(5).ToString(), "127.0.0.9");
  AddressPool v6(*base::Cidr::Parse("fd00::/120"));
  EXPECT_EQ(v6.At(0).ToString(), "fd00::1");
}

TEST(ProxyHeaderTest, VersionOneText) {
  std::string out;
  AppendProxyHeader(&out, 1, *base::IpAddress::Parse("203.0.113.7"), 40000,
                    *base::IpAddress::Parse("127.0.0.1"), 25);
  EXPECT_EQ(out, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\n");
  out.clear();
  AppendProxyHeader(&out, 1, *base::IpAddress::Parse("2001:db8::1"), 1,
                    *base::IpAddress::Parse("::1"), 25);
  EXPECT_EQ(out, "PROXY TCP6 2001:db8::1 ::1 1 25\r\n");
}

TEST(ProxyHeaderTest, VersionTwoBinary) {
  std::string out;
  AppendProxyHeader(&out, 2, *base::IpAddress::Parse("203.0.113.7"), 0x1234,
                    *base::IpAddress::Parse("127.0.0.1"), 25);
  ASSERT_EQ(out.size(), 16u + 12u);
  EXPECT_EQ(out.substr(0, 12), std::string("\r\n\r\n\0\r\nQUIT\n", 12));
  EXPECT_EQ(out[12], '\x21');
  EXPECT_EQ(out[13], '\x11');
  EXPECT_EQ(out[15], 12);
  EXPECT_EQ(uint8_t(out[16]), 203);
  EXPECT_EQ(uint8_t(out[24]), 0x12);
  EXPECT_EQ(uint8_t(out[25]), 0x34);
  EXPECT_EQ(uint8_t(out[27]), 25);
}

}  // namespace
}  // namespace sender
