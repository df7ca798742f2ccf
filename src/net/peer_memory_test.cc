#include "net/peer_memory.h"

#include <gtest/gtest.h>

namespace net {
namespace {

TEST(PeerMemory, SeedThenUpdateAccumulates) {
  PeerMemory m(1000);
  auto ip = *base::IpAddress::Parse("198.51.100.4");
  EXPECT_EQ(m.Lookup(ip).connections, 0);
  tarpit::PeerHistory seeded;
  seeded.connections = 7;
  seeded.messages = 3;
  seeded.early_talks = 1;
  m.Seed(ip, seeded);
  smtp::SessionRecord r;
  r.client = ip;
  r.messages = 2;
  r.early_talker = true;
  r.bare_lf = 4;
  r.protocol_errors = 1;
  r.duration_seconds = 1.5;
  m.Update(r);
  auto h = m.Lookup(ip);
  EXPECT_EQ(h.connections, 8);
  EXPECT_EQ(h.messages, 5);
  EXPECT_EQ(h.early_talks, 2);
  EXPECT_EQ(h.bare_lf, 4);
  EXPECT_EQ(h.protocol_errors, 1);
  EXPECT_DOUBLE_EQ(h.seconds_held, 1.5);
  EXPECT_EQ(m.Lookup(*base::IpAddress::Parse("198.51.100.5")).connections, 0);
}

TEST(PeerMemory, StaysBounded) {
  PeerMemory m(16 * 4);  // 4 per shard
  smtp::SessionRecord r;
  for (uint32_t i = 0; i < 10000; ++i) {
    r.client = base::IpAddress::FromV4(0x0a000000u + i);
    m.Update(r);
  }
  EXPECT_LE(m.size(), 16u * 5);
}

}  // namespace
}  // namespace net
