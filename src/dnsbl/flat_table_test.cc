// The compact index storage: agrees with a std::map under random inserts
// and erasures, keeps the empty key apart, stays within its memory bound;
// the Index packs times and counts without losing what the policy reads.
#include "dnsbl/flat_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "dnsbl/listing.h"
#include "ledger/test_util.h"

namespace dnsbl {
namespace {

TEST(FlatTable, AgreesWithAMap) {
  FlatTable<uint32_t> t;
  std::map<uint32_t, uint32_t> ref;
  std::mt19937 rng(16);
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 5000; ++i) {
      uint32_t k = rng() % 20000;  // collisions and the key 0 included
      uint32_t v = rng();
      t.Insert(k)->last_seen = v;
      ref[k] = v;
    }
    uint32_t cut = rng();
    t.EraseIf([cut](const Facts& f) { return f.last_seen < cut; });
    std::erase_if(ref, [cut](const auto& kv) { return kv.second < cut; });
    ASSERT_EQ(t.size(), ref.size());
    for (uint32_t k = 0; k < 20000; ++k) {
      Facts* f = t.Find(k);
      auto it = ref.find(k);
      ASSERT_EQ(f != nullptr, it != ref.end()) << k;
      if (f) {
        ASSERT_EQ(f->last_seen, it->second);
      }
    }
  }
}

TEST(FlatTable, SixteenByteKeys) {
  FlatTable<V6Key> t;
  for (uint64_t i = 0; i < 3000; ++i) t.Insert({0x20010db800000000ull, i});
  EXPECT_EQ(t.size(), 3000u);
  EXPECT_NE(t.Find({0x20010db800000000ull, 2999}), nullptr);
  EXPECT_EQ(t.Find({0x20010db800000001ull, 1}), nullptr);
  EXPECT_NE(t.Find({0x20010db800000000ull, 0}), nullptr);
  EXPECT_EQ(t.Find({0, 0}), nullptr);
}

// The figure the DNSBL bench measures end to end, bounded here: at most 64
// bytes a slot per IPv4 address at any size (a load of 3/8 at worst, just
// after doubling), against rbldnsd's 92.
TEST(FlatTable, BytesPerIpv4Address) {
  FlatTable<uint32_t> t;
  EXPECT_EQ(sizeof(FlatTable<uint32_t>::Slot), 24u);
  for (uint32_t i = 1; i <= 100000; ++i) {
    t.Insert(0x0a000000 + i);
    if (i >= 16) {
      ASSERT_LE(t.capacity() * sizeof(FlatTable<uint32_t>::Slot), 64 * i) << i;
    }
  }
}

TEST(Pack, WholeSecondsAndSaturatedCounts) {
  Entry e;
  e.first_seen = 1700000000.9;
  e.last_seen = 1700000100.2;
  e.messages = uint64_t(1) << 40;
  e.connections = 7;
  e.tarpitted = 70000;
  e.evidence = 0x85;
  Entry u = Unpack(Pack(e));
  EXPECT_EQ(u.first_seen, 1700000000);
  EXPECT_EQ(u.last_seen, 1700000100);
  EXPECT_EQ(u.messages, UINT32_MAX);
  EXPECT_EQ(u.connections, 7u);
  EXPECT_EQ(u.tarpitted, 65535u);
  EXPECT_EQ(u.evidence, 0x85u);
}

TEST(Index, IPv4AndIPv6NetworksMeet) {
  using ledger::testing::Ip;
  using ledger::testing::Session;
  Index index(1 << 16, 64);
  index.Update(Session("192.0.2.7", 2, 10, 1700000000));
  index.Update(Session("192.0.2.7", 3, 10, 1700000050));
  index.Update(Session("2001:db8:1:2::5", 1, 10, 1700000000));
  auto v4 = index.Lookup(Ip("192.0.2.7"));
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->messages, 5u);
  EXPECT_EQ(v4->connections, 2u);
  EXPECT_EQ(v4->first_seen, 1700000000 - 2);  // the first start
  // Another address of the same /64 finds the network's record.
  auto v6 = index.Lookup(Ip("2001:db8:1:2:ffff::1"));
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->messages, 1u);
  EXPECT_FALSE(index.Lookup(Ip("2001:db8:1:3::5")).has_value());
  EXPECT_FALSE(index.Lookup(Ip("192.0.2.8")).has_value());
  EXPECT_EQ(index.size(), 2u);
}

}  // namespace
}  // namespace dnsbl
