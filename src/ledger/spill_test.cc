// The spill file: its record lines, its chunks, and the ledger writing to it
// beyond the pending bound and at Close, then sending it once the store is
// back. (The PostgreSQL exactly-once side: postgres_store_test.cc.)
#include "ledger/spill.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "base/clock.h"
#include "ledger/ledger.h"
#include "ledger/test_util.h"

namespace ledger {
namespace {

using testing::Ip;
using testing::Session;
using testing::TempDir;

SourceRecord Full() {
  SourceRecord r;
  r.ip = Ip("2001:db8::7");
  r.first_seen = 1.7e9 + 0.125;
  r.last_seen = 1.7e9 + 1.0 / 3;
  r.connections = 3;
  r.messages = 7;
  r.early_talker = 1;
  r.bare_lf = 2;
  r.protocol_errors = 4;
  r.seconds_held = 12.75;
  r.sessions_with_mail = 2;
  r.transactions = 5;
  r.recipients = 9;
  r.bytes = 12345;
  r.commands = 40;
  r.tls_sessions = 1;
  r.proxied_sessions = 1;
  r.auth_attempts = 6;
  r.pipelining = 1;
  r.bare_cr = 3;
  r.unknown_commands = 8;
  r.limits_hit = 1;
  r.tarpitted_sessions = 2;
  r.delay_seconds = 33.5;
  r.replies_stuttered = 11;
  r.slow_reads = 12;
  r.close_reasons[0] = 2;
  r.close_reasons[3] = 1;
  MergeName(&r.helo_names, "tab\there \"quoted\"\nnewline", 2);
  MergeName(&r.mail_from_domains, "offers.example", 5);
  MergeName(&r.rcpt_domains, "example.org", 9);
  return r;
}

TEST(Spill, RecordLineRoundTrips) {
  SourceRecord r = Full();
  std::string line = EncodeRecord(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(DecodeRecord(line).value(), r);
  EXPECT_FALSE(DecodeRecord(line.substr(0, line.size() / 2)).ok());
  EXPECT_FALSE(DecodeRecord("").ok());
}

TEST(Spill, ChunksAreReadInOrderAndTheFileGoesWhenSent) {
  TempDir dir;
  Spill s(dir.File("x.spill"), 0);
  std::vector<SourceRecord> recs;
  for (int i = 0; i < 10; ++i) {
    SourceRecord r = Full();
    r.ip = base::IpAddress::FromV4(0x0a000000u + i);
    recs.push_back(r);
  }
  std::vector<const SourceRecord*> ptrs;
  for (const auto& r : recs) ptrs.push_back(&r);
  ASSERT_TRUE(s.Append(ptrs).ok());
  uint64_t size = s.Unsent().value();
  EXPECT_GT(size, 0u);
  // A chunk of about 3 lines' bytes, then the rest.
  auto a = s.Read(size * 3 / 10).value();
  ASSERT_GE(a.records.size(), 3u);
  ASSERT_LT(a.records.size(), 10u);
  ASSERT_TRUE(s.Consume(a.end).ok());
  auto b = s.Read(size).value();
  EXPECT_EQ(a.records.size() + b.records.size(), 10u);
  EXPECT_EQ(b.records.back(), recs.back());
  ASSERT_TRUE(s.Consume(b.end).ok());
  EXPECT_EQ(s.Unsent().value(), 0u);
  EXPECT_FALSE(std::filesystem::exists(dir.File("x.spill")));
  EXPECT_FALSE(std::filesystem::exists(dir.File("x.spill.pos")));
  // The size bound refuses, writing nothing.
  Spill small(dir.File("y.spill"), 100);
  EXPECT_FALSE(small.Append(ptrs).ok());
  EXPECT_EQ(small.Unsent().value(), 0u);
}

TEST(Spill, BatchFileKeepsItsSequence) {
  TempDir dir;
  Spill s(dir.File("x.spill"), 0);
  EXPECT_FALSE(s.LoadBatch().value().has_value());
  SpilledBatch b{42, 17, {Full()}};
  ASSERT_TRUE(s.SaveBatch(b).ok());
  auto got = s.LoadBatch().value();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->seq, 42u);
  EXPECT_EQ(got->end, 17u);
  EXPECT_EQ(got->records, b.records);
  ASSERT_TRUE(s.RemoveBatch().ok());
  EXPECT_FALSE(s.LoadBatch().value().has_value());
}

// Beyond max_pending_bytes with the store failing, new sources go to the
// spill file instead of being dropped; once the store is back they are
// sent, exactly, and the file is removed.
TEST(Spill, LedgerSpillsBeyondThePendingBoundAndSendsItLater) {
  TempDir dir;
  base::FakeClock clock;
  auto mem = NewMemoryStore();
  auto fault = std::make_unique<FaultStore>(mem.get());
  FaultStore* f = fault.get();
  Options c;
  c.max_pending_bytes = 3 * sizeof(SourceRecord) + sizeof(SourceRecord) / 2;
  auto l = Ledger::Create(std::move(fault), c, &clock, false);
  ASSERT_TRUE(l->UseSpill(dir.File("s.spill"), 0).ok());
  f->FailWrites(-1);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 10; ++i)
      l->Record(Session("192.0.2." + std::to_string(i), 1, 1));
    EXPECT_FALSE(l->Flush().ok());
  }
  EXPECT_EQ(l->Metrics().sessions_dropped, 0u);
  EXPECT_EQ(l->Metrics().sources_spilled, 14u);  // 7 per round
  EXPECT_TRUE(std::filesystem::exists(dir.File("s.spill")));
  f->FailWrites(0);
  ASSERT_TRUE(l->Flush().ok());
  EXPECT_EQ(mem->GetTotals()->connections, 20u);
  EXPECT_EQ(mem->GetTotals()->sources, 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(mem->Get(Ip("192.0.2." + std::to_string(i))).value()->messages,
              2u);
  }
  EXPECT_FALSE(std::filesystem::exists(dir.File("s.spill")));
  EXPECT_FALSE(std::filesystem::exists(dir.File("s.spill.batch")));
  ASSERT_TRUE(l->Close().ok());
}

// Close with the store down writes the failed batch and what is pending
// to the spill; the next ledger on the spill sends both, each once.
TEST(Spill, CloseWithTheStoreDownSpillsAndTheNextStartSends) {
  TempDir dir;
  base::FakeClock clock;
  auto mem = NewMemoryStore();
  {
    auto fault = std::make_unique<FaultStore>(mem.get());
    FaultStore* f = fault.get();
    auto l = Ledger::Create(std::move(fault), Options(), &clock, false);
    ASSERT_TRUE(l->UseSpill(dir.File("s.spill"), 0).ok());
    l->Record(Session("192.0.2.1", 2, 10));
    ASSERT_TRUE(l->Flush().ok());
    f->FailWrites(-1);
    l->Record(Session("192.0.2.1", 3, 10));  // the failed batch
    EXPECT_FALSE(l->Flush().ok());
    l->Record(Session("192.0.2.2", 4, 10));  // pending
    EXPECT_TRUE(l->Close().ok());            // spilled: nothing lost
    EXPECT_EQ(l->Metrics().sessions_dropped, 0u);
  }
  EXPECT_TRUE(std::filesystem::exists(dir.File("s.spill.batch")));
  EXPECT_TRUE(std::filesystem::exists(dir.File("s.spill")));
  EXPECT_EQ(mem->GetTotals()->messages, 2u);
  auto l = Ledger::Create(std::make_unique<FaultStore>(mem.get()), Options(),
                          &clock, false);
  ASSERT_TRUE(l->UseSpill(dir.File("s.spill"), 0).ok());
  ASSERT_TRUE(l->Flush().ok());
  EXPECT_EQ(mem->Get(Ip("192.0.2.1")).value()->messages, 5u);
  EXPECT_EQ(mem->Get(Ip("192.0.2.2")).value()->messages, 4u);
  EXPECT_EQ(mem->GetTotals()->connections, 3u);
  EXPECT_FALSE(std::filesystem::exists(dir.File("s.spill")));
  EXPECT_FALSE(std::filesystem::exists(dir.File("s.spill.batch")));
}

}  // namespace
}  // namespace ledger
