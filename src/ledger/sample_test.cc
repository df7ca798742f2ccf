// Issue 13 item 1: a record that stands for an IPv6 network samples the
// full addresses seen inside it (the first kMaxSampledAddresses with their
// sessions, and a sketch of how many distinct), kept by every store, the
// spill file, and served as JSON.
#include <gtest/gtest.h>

#include <string>

#include "ledger/export.h"
#include "ledger/ledger.h"
#include "ledger/spill.h"
#include "ledger/sqlite_store.h"
#include "ledger/test_util.h"

namespace ledger {
namespace {

using testing::Ip;
using testing::Session;
using testing::TempDir;

// The i-th address inside 2001:db8:1:2::/64.
std::string Host(int i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "2001:db8:1:2:%x:%x::%x", i / 65536 % 65536,
                i % 65536, i % 7 + 1);
  return buf;
}

SourceRecord Sampled(int first, int count) {
  SourceRecord r;
  r.ip = Ip("2001:db8:1:2::");
  for (int i = first; i < first + count; ++i) SampleAddress(&r, Ip(Host(i)), 1);
  return r;
}

TEST(AddressSample, KeepsTheFirstAddressesAndCountsTheDistinct) {
  SourceRecord r;
  r.ip = Ip("2001:db8:1:2::");
  EXPECT_EQ(r.DistinctAddresses(), 0u);
  SampleAddress(&r, Ip(Host(0)), 1);
  SampleAddress(&r, Ip(Host(1)), 2);
  SampleAddress(&r, Ip(Host(0)), 1);
  ASSERT_EQ(r.addresses.size(), 2u);
  EXPECT_EQ(r.addresses[0], (AddressCount{Ip(Host(0)), 2}));
  EXPECT_EQ(r.addresses[1], (AddressCount{Ip(Host(1)), 2}));
  EXPECT_EQ(r.DistinctAddresses(), 2u);  // exact while the sample has room
  for (int i = 2; i < 100; ++i) SampleAddress(&r, Ip(Host(i)), 1);
  // Bounded: the first 8 stay, in first-seen order.
  ASSERT_EQ(r.addresses.size(), kMaxSampledAddresses);
  EXPECT_EQ(r.addresses[7].address, Ip(Host(7)));
  // 100 distinct: the sketch's estimate within 20 %.
  EXPECT_NEAR(double(r.DistinctAddresses()), 100, 20);
  // A host rotating over 1,000 addresses: still within 30 %; repeats do not
  // count again.
  SourceRecord big = Sampled(0, 1000);
  uint64_t once = big.DistinctAddresses();
  EXPECT_NEAR(double(once), 1000, 300);
  for (int i = 0; i < 1000; ++i) SampleAddress(&big, Ip(Host(i)), 1);
  EXPECT_EQ(big.DistinctAddresses(), once);
  // Tens of thousands: the sketch saturates, the answer stays a bound.
  EXPECT_GE(Sampled(0, 20000).DistinctAddresses(), 1000u);
  EXPECT_LE(Sampled(0, 20000).ApproxBytes(), sizeof(SourceRecord) + 512);
}

TEST(AddressSample, MergingBatchesEqualsOneRecord) {
  SourceRecord a = Sampled(0, 5), b = Sampled(3, 60);
  MergeRecord(&a, b);
  SourceRecord whole = Sampled(0, 63);
  // 3 and 4 were in both: their sessions add.
  ASSERT_EQ(a.addresses.size(), kMaxSampledAddresses);
  EXPECT_EQ(a.addresses[3], (AddressCount{Ip(Host(3)), 2}));
  EXPECT_EQ(a.addresses[5].address, whole.addresses[5].address);
  EXPECT_EQ(a.address_sketch, whole.address_sketch);
  EXPECT_EQ(a.DistinctAddresses(), whole.DistinctAddresses());
}

TEST(AddressSample, TheLedgerSamplesOnlyNetworksAndTheStoreKeepsIt) {
  TempDir dir;
  Options c;
  c.db_path = dir.File("l.db");
  c.flush_interval = 3600;
  c.retention_days = 0;
  c.ipv6_prefix = 64;
  {
    auto l = Ledger::Open(c).value();
    for (int i = 0; i < 40; ++i) l->Record(Session(Host(i % 20), 1, 10));
    l->Record(Session("2001:db8:1:2::abcd", 1, 10));
    l->Record(Session("192.0.2.7", 1, 10));
    ASSERT_TRUE(l->Flush().ok());
    // A second batch merges into the stored record.
    for (int i = 20; i < 30; ++i) l->Record(Session(Host(i), 1, 10));
    ASSERT_TRUE(l->Close().ok());
  }
  auto l = Ledger::Open(c).value();
  // Looked up by any address inside the /64.
  auto r = l->Source(Ip("2001:db8:1:2:ffff::1")).value();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->ip, Ip("2001:db8:1:2::"));
  EXPECT_EQ(r->connections, 51u);
  ASSERT_EQ(r->addresses.size(), kMaxSampledAddresses);
  EXPECT_EQ(r->addresses[0], (AddressCount{Ip(Host(0)), 2}));
  EXPECT_EQ(r->addresses[7], (AddressCount{Ip(Host(7)), 2}));
  EXPECT_NEAR(double(r->DistinctAddresses()), 31, 6);
  // Served: the API's record and JSON Lines export.
  auto j = SourceToJson(*r);
  ASSERT_TRUE(j.contains("addresses"));
  EXPECT_EQ(j["addresses"]["sample"][0]["address"], Ip(Host(0)).ToString());
  EXPECT_EQ(j["addresses"]["sample"][0]["sessions"], 2);
  EXPECT_EQ(j["addresses"]["sample"].size(), kMaxSampledAddresses);
  EXPECT_EQ(j["addresses"]["distinct"], r->DistinctAddresses());
  EXPECT_EQ(j["addresses"]["distinct_estimated"], true);
  // An IPv4 record samples nothing and its JSON is as before.
  auto v4 = l->Source(Ip("192.0.2.7")).value();
  ASSERT_TRUE(v4.has_value());
  EXPECT_TRUE(v4->addresses.empty());
  EXPECT_FALSE(SourceToJson(*v4).contains("addresses"));
}

TEST(AddressSample, NotWithOneRecordPerAddress) {
  Options c;
  c.ipv6_prefix = 128;
  base::FakeClock clock;
  auto l = Ledger::Create(NewMemoryStore(), c, &clock, false);
  l->Record(Session("2001:db8::5", 1, 10));
  ASSERT_TRUE(l->Flush().ok());
  auto r = l->Source(Ip("2001:db8::5")).value();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->addresses.empty());
}

TEST(AddressSample, TheSpillFileKeepsItAndReadsOlderLines) {
  SourceRecord r = Sampled(0, 30);
  r.connections = 30;
  std::string line = EncodeRecord(r);
  auto back = DecodeRecord(line);
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(*back, r);
  // A line written before the field existed: no sample.
  SourceRecord plain = r;
  plain.addresses.clear();
  plain.address_sketch = {};
  std::string old = EncodeRecord(plain);
  EXPECT_EQ(old, line.substr(0, old.size()));
  auto old_back = DecodeRecord(old);
  ASSERT_TRUE(old_back.ok()) << old_back.error();
  EXPECT_EQ(*old_back, plain);
}

}  // namespace
}  // namespace ledger
