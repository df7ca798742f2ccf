// The per-IP connection counts (open addressing) agree with a map.
#include "net/ip_counts.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

namespace net {
namespace {

std::vector<base::IpAddress> Addresses(size_t n) {
  std::vector<base::IpAddress> out;
  for (size_t i = 0; i < n; ++i) {
    if (i % 3 == 2) {  // some IPv6
      std::array<uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8};
      b[14] = uint8_t(i >> 8);
      b[15] = uint8_t(i);
      out.push_back(base::IpAddress::FromV6(b));
    } else {
      out.push_back(base::IpAddress::FromV4(0x7f400000u + uint32_t(i)));
    }
  }
  return out;
}

// Random adds and removes over a few hundred addresses (so that probe runs
// collide, grow, shift back on removal and shrink) against a std::map.
TEST(IpCounts, AgreesWithAMapThroughGrowthRemovalAndShrinking) {
  auto ips = Addresses(600);
  std::mt19937 rng(17);
  IpCountTable t;
  std::map<base::IpAddress, int> want;
  for (int round = 0; round < 4; ++round) {
    // Fill up (mostly adds), then drain (mostly removes).
    for (int step = 0; step < 6000; ++step) {
      const auto& ip = ips[rng() % ips.size()];
      bool add = (rng() % 10) < (round % 2 == 0 ? 8u : 2u);
      if (add) {
        ASSERT_EQ(t.Add(ip), ++want[ip]);
      } else {
        t.Remove(ip);
        auto it = want.find(ip);
        if (it != want.end() && --it->second == 0) want.erase(it);
      }
      ASSERT_EQ(t.size(), want.size());
      ASSERT_LE(t.size() * 4, t.slots() * 3);
    }
    for (const auto& ip : ips) {
      auto it = want.find(ip);
      ASSERT_EQ(t.Count(ip), it == want.end() ? 0 : it->second);
    }
  }
  for (auto& [ip, n] : want)
    while (n-- > 0) t.Remove(ip);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.slots(), 2 * IpCountTable::kMinSlots);  // both shrunk back
  for (const auto& ip : ips) ASSERT_EQ(t.Count(ip), 0);
}

TEST(IpCounts, CountsPerAddressAcrossShards) {
  IpCounts c;
  auto ips = Addresses(100);
  for (int k = 1; k <= 3; ++k)
    for (const auto& ip : ips) ASSERT_EQ(c.Add(ip), k);
  for (const auto& ip : ips) c.Remove(ip);
  for (const auto& ip : ips) EXPECT_EQ(c.Count(ip), 2);
  c.Remove(ips[0]);
  c.Remove(ips[0]);
  c.Remove(ips[0]);  // one too many: nothing
  EXPECT_EQ(c.Count(ips[0]), 0);
  EXPECT_EQ(c.Add(ips[0]), 1);
}

}  // namespace
}  // namespace net
