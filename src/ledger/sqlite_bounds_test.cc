// The SQLite store's bounds: ledger.max_sources and ledger.max_db_bytes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ledger/sqlite_store.h"
#include "ledger/test_util.h"

namespace ledger {
namespace {

using testing::Ip;
using testing::TempDir;

// Source i: 10.(i/65536).(i/256%256).(i%256), seen at 1000 + i, with a
// padded HELO name (so that records take room).
SourceRecord Numbered(int i, uint64_t messages = 0) {
  SourceRecord r;
  r.ip = Ip("10." + std::to_string(i / 65536) + "." +
            std::to_string(i / 256 % 256) + "." + std::to_string(i % 256));
  r.first_seen = r.last_seen = 1000 + i;
  r.connections = 1;
  r.messages = messages;
  MergeName(&r.helo_names, "host-" + std::to_string(i) + std::string(100, 'x'),
            1);
  return r;
}

TEST(SqliteBounds, MaxSourcesEvictsTheLeastValuableOfTheOldest) {
  TempDir dir;
  SqliteOptions o;
  o.max_sources = 100;
  auto store = OpenSqliteStore(dir.File("s.db"), o).value();
  // 0..99: the first 10 have evidence and the next 10 messages, though
  // they are the oldest.
  std::vector<SourceRecord> batch;
  for (int i = 0; i < 100; ++i) {
    SourceRecord r = Numbered(i, i >= 10 && i < 20 ? 3 : 0);
    if (i < 10) r.early_talker = 1;
    batch.push_back(r);
  }
  ASSERT_TRUE(store->Apply(batch).ok());
  EXPECT_EQ(store->Usage().evicted, 0u);
  // 50 new sources, in 5 commits.
  for (int b = 0; b < 5; ++b) {
    batch.clear();
    for (int i = 100 + b * 10; i < 110 + b * 10; ++i) {
      batch.push_back(Numbered(i));
    }
    ASSERT_TRUE(store->Apply(batch).ok());
  }
  auto t = store->GetTotals().value();
  EXPECT_EQ(t.sources, 100u);
  EXPECT_EQ(store->Usage().evicted, 50u);
  // The totals follow: what is left is what is summed.
  SourceQuery all;
  all.limit = 0;
  auto page = store->Query(all).value();
  ASSERT_EQ(page.records.size(), 100u);
  uint64_t messages = 0;
  for (const auto& r : page.records) messages += r.messages;
  EXPECT_EQ(t.messages, messages);
  EXPECT_EQ(t.connections, 100u);
  // Evidence and messages kept the oldest 20; the 50 evicted are the
  // oldest of those with neither (20..69).
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(store->Get(Numbered(i).ip)->has_value()) << i;
  }
  for (int i = 20; i < 70; ++i) {
    EXPECT_FALSE(store->Get(Numbered(i).ip)->has_value()) << i;
  }
  for (int i = 70; i < 150; ++i) {
    EXPECT_TRUE(store->Get(Numbered(i).ip)->has_value()) << i;
  }
  // A known source coming back is no new source: nothing evicted.
  ASSERT_TRUE(store->Apply({Numbered(149, 1)}).ok());
  EXPECT_EQ(store->Usage().evicted, 50u);
}

TEST(SqliteBounds, LoweringTheCapShrinksOverSeveralCommits) {
  TempDir dir;
  {
    auto store = OpenSqliteStore(dir.File("s.db")).value();
    std::vector<SourceRecord> batch;
    for (int i = 0; i < int(kMaxEvictPerCommit) + 500; ++i) {
      batch.push_back(Numbered(i));
    }
    ASSERT_TRUE(store->Apply(batch).ok());
  }
  SqliteOptions o;
  o.max_sources = 100;
  auto store = OpenSqliteStore(dir.File("s.db"), o).value();
  // 10,501 after the first commit: it evicts its one new source plus
  // kMaxEvictPerCommit (10,000), the next the rest.
  ASSERT_TRUE(store->Apply({Numbered(int(kMaxEvictPerCommit) + 1000)}).ok());
  EXPECT_EQ(store->GetTotals()->sources, 500u);
  ASSERT_TRUE(store->Apply({Numbered(int(kMaxEvictPerCommit) + 1001)}).ok());
  EXPECT_EQ(store->GetTotals()->sources, 100u);
}

TEST(SqliteBounds, DbBudgetKeepsTheDatabaseFromGrowing) {
  TempDir dir;
  uint64_t budget = 0;
  {
    auto store = OpenSqliteStore(dir.File("s.db")).value();
    std::vector<SourceRecord> batch;
    for (int i = 0; i < 2000; ++i) batch.push_back(Numbered(i));
    ASSERT_TRUE(store->Apply(batch).ok());
    budget = store->Usage().db_bytes;
    EXPECT_GT(budget, 2000u * 100);
    EXPECT_FALSE(store->Usage().at_budget);
  }
  SqliteOptions o;
  o.max_db_bytes = budget;
  auto store = OpenSqliteStore(dir.File("s.db"), o).value();
  EXPECT_EQ(store->Usage().db_bytes, budget);
  // 20 commits of 200 new sources: twice what the budget held.
  for (int b = 0; b < 20; ++b) {
    std::vector<SourceRecord> batch;
    for (int i = 0; i < 200; ++i) batch.push_back(Numbered(2000 + b * 200 + i));
    ASSERT_TRUE(store->Apply(batch).ok());
  }
  auto u = store->Usage();
  EXPECT_TRUE(u.at_budget);
  EXPECT_GE(u.evicted, 4000u - 200);
  EXPECT_LE(store->GetTotals()->sources, 2000u + 200);
  // Freed pages are reused: the used size stays near the budget.
  EXPECT_LT(u.db_bytes, budget + budget / 5);
  // The newest are kept, the oldest went.
  EXPECT_TRUE(store->Get(Numbered(5999).ip)->has_value());
  EXPECT_FALSE(store->Get(Numbered(0).ip)->has_value());
}

}  // namespace
}  // namespace ledger
