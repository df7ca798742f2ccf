// PostgreSQL-only behaviour: migrations, bad settings, sink ids, races
// between sinks and cursors. The outage and exactly-once cases are in
// postgres_outage_test.cc.
#include "ledger/postgres_store.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "ledger/ledger.h"
#include "ledger/postgres_store_fixture.h"

namespace ledger {
namespace {

// From every earlier version, with a record written by that version.
TEST_F(PostgresStoreTest, MigratesEveryEarlierVersionAndKeepsRecords) {
  for (int v = 1; v < kPostgresSchemaVersion; ++v) {
    SCOPED_TRACE(v);
    url_ = pg_->NewDatabase();
    ASSERT_TRUE(CreatePostgresSchemaForTest(
                    url_ + " password=" + PgCluster::kPassword, v)
                    .ok());
    EXPECT_EQ(Scalar("SELECT count(*) FROM pg_tables WHERE tablename = "
                     "'source_sinks'"),
              v >= 2 ? "1" : "0");
    EXPECT_EQ(Scalar("INSERT INTO sources (ip, messages) VALUES "
                     "('\\x00000000000000000000ffffc0000201', 3) RETURNING 1"),
              "1");
    EXPECT_EQ(Scalar("UPDATE totals SET sources = 1, messages = 3 RETURNING 1"),
              "1");
    auto s = OpenPostgresStore(Opts("a"));
    ASSERT_TRUE(s.ok()) << s.error();
    EXPECT_EQ(Scalar("SELECT version FROM spamsink_schema"),
              std::to_string(kPostgresSchemaVersion));
    ASSERT_TRUE((*s)->Apply({Delta("192.0.2.1", 3)}).ok());
    EXPECT_EQ((*s)->Get(Ip("192.0.2.1")).value()->messages, 6u);
    // A second open (another sink starting) migrates nothing and works.
    auto t = OpenPostgresStore(Opts("b"));
    ASSERT_TRUE(t.ok()) << t.error();
    EXPECT_EQ((*t)->GetTotals()->messages, 6u);
    EXPECT_EQ((*t)->GetTotals()->sources, 1u);
  }
}

TEST_F(PostgresStoreTest, BadSettingsNameTheSettingAndHideThePassword) {
  auto o = Opts("a");
  o.password = "wrong-password";
  auto s = OpenPostgresStore(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("ledger.postgresql_url"), std::string::npos)
      << s.error();
  EXPECT_NE(s.error().find("password"), std::string::npos) << s.error();
  EXPECT_EQ(s.error().find("wrong-password"), std::string::npos) << s.error();

  o = Opts("a");
  o.url = "host=" + pg_->dir() + " port=5432 user=spamsink dbname=absent";
  s = OpenPostgresStore(o);
  ASSERT_FALSE(s.ok());  // the server answers: a setting to fix
  EXPECT_NE(s.error().find("ledger.postgresql_url"), std::string::npos);
  EXPECT_NE(s.error().find("absent"), std::string::npos) << s.error();

  // No server there: opens unconnected (the sink serves), every write and
  // read fails naming the setting until one answers.
  o = Opts("a");
  o.url = "host=" + pg_->dir() + "/absent port=5432 dbname=x";
  s = OpenPostgresStore(o);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ((*s)->next_sequence(), 0u);
  auto w = (*s)->Apply({Delta("192.0.2.1", 1)});
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.message().find("ledger.postgresql_url"), std::string::npos);
  EXPECT_EQ(w.message().find("wrong-password"), std::string::npos);
  EXPECT_FALSE((*s)->Get(Ip("192.0.2.1")).ok());

  o = Opts("a");
  o.url = "postgresql://[bad";
  s = OpenPostgresStore(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("ledger.postgresql_url"), std::string::npos);

  ASSERT_TRUE(OpenPostgresStore(Opts("a")).ok());
  EXPECT_EQ(Scalar("UPDATE spamsink_schema SET version = 99 RETURNING 1"), "1");
  s = OpenPostgresStore(Opts("a"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("newer"), std::string::npos) << s.error();
  EXPECT_NE(s.error().find("ledger.postgresql_url"), std::string::npos);
}
TEST_F(PostgresStoreTest, TwoProcessesWithOneSinkIdAreRefused) {
  auto a = OpenPostgresStore(Opts("same")).value();
  auto b = OpenPostgresStore(Opts("same")).value();
  ASSERT_TRUE(a->Apply({Delta("192.0.2.1", 1)}).ok());
  auto s = b->Apply({Delta("192.0.2.1", 1)});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("ledger.sink_id"), std::string::npos);
  EXPECT_EQ(a->GetTotals()->messages, 1u);
}

// Sink B inserts an address that sink A's batch found new, after A's
// SELECT and before A's INSERT: A's batch starts again and merges B's row
// instead of skipping its own counts.
TEST_F(PostgresStoreTest, NewAddressRacingAnotherSinkIsMergedNotLost) {
  auto b = OpenPostgresStore(Opts("sink-b")).value();
  auto o = Opts("sink-a");
  int locked = 0;
  o.after_rows_locked = [&](int, int) {
    if (locked++ == 0) {
      EXPECT_TRUE(b->Apply({Delta("192.0.2.7", 2)}).ok());
    }
  };
  auto a = OpenPostgresStore(o).value();
  ASSERT_TRUE(a->Apply({Delta("192.0.2.7", 3), Delta("192.0.2.8", 1)}).ok());
  EXPECT_EQ(locked, 2);  // the batch ran twice
  EXPECT_EQ(a->Get(Ip("192.0.2.7")).value()->messages, 5u);
  EXPECT_EQ(a->Get(Ip("192.0.2.8")).value()->messages, 1u);
  auto t = a->GetTotals().value();
  EXPECT_EQ(t.sources, 2u);
  EXPECT_EQ(t.messages, 6u);
  auto sinks = a->Sinks(Ip("192.0.2.7")).value();
  ASSERT_EQ(sinks.size(), 2u);
  EXPECT_EQ(sinks[0].messages, 3u);  // sink-a
  EXPECT_EQ(sinks[1].messages, 2u);  // sink-b
}

// The export scan goes through a cursor, several FETCHes here: it visits
// exactly what Query returns, in the same order, and stops at the first
// error of its visitor.
TEST_F(PostgresStoreTest, ScanVisitsWhatQueryReturnsThroughACursor) {
  auto s = OpenPostgresStore(Opts("a")).value();
  std::vector<SourceRecord> batch;
  for (uint32_t i = 0; i < 2500; ++i) {
    SourceRecord r = Delta("192.0.2.1", 1 + i % 7);
    r.ip = base::IpAddress::FromV4(0x0a000000u + i);
    batch.push_back(r);
  }
  ASSERT_TRUE(s->Apply(batch).ok());
  SourceQuery q;
  q.sort = SortKey::kIp;
  q.ascending = true;
  q.min_messages = 2;
  q.limit = 0;  // all
  auto page = s->Query(q).value();
  ASSERT_GT(page.records.size(), 2000u);  // more than two FETCHes
  std::vector<SourceRecord> seen;
  ASSERT_TRUE(s->Scan(q, [&](const SourceRecord& r) {
                 seen.push_back(r);
                 return base::Status();
               }).ok());
  EXPECT_EQ(seen, page.records);
  int n = 0;
  auto st = s->Scan(q, [&](const SourceRecord&) {
    return ++n == 1500 ? base::Status::Error("reader went away")
                       : base::Status();
  });
  EXPECT_EQ(st.message(), "reader went away");
  EXPECT_EQ(n, 1500);
}

// sink= selects the sources that sink saw (whoever else saw them too), in
// pages, counts and exports alike; the records stay the fleet's.
TEST_F(PostgresStoreTest, SinkFilterSelectsWhatThatSinkSaw) {
  auto a = OpenPostgresStore(Opts("sink-a")).value();
  auto b = OpenPostgresStore(Opts("sink-b")).value();
  ASSERT_TRUE(a->Apply({Delta("192.0.2.1", 1), Delta("192.0.2.2", 2)}).ok());
  ASSERT_TRUE(b->Apply({Delta("192.0.2.2", 3), Delta("192.0.2.3", 4)}).ok());
  auto ips = [](const std::vector<SourceRecord>& rs) {
    std::vector<std::string> v;
    for (const auto& r : rs) v.push_back(r.ip.ToString());
    return v;
  };
  SourceQuery q;
  q.sort = SortKey::kIp;
  q.ascending = true;
  q.sink = "sink-a";
  auto page = a->Query(q).value();
  EXPECT_EQ(page.total, 2u);
  EXPECT_EQ(ips(page.records),
            (std::vector<std::string>{"192.0.2.1", "192.0.2.2"}));
  EXPECT_EQ(page.records[1].messages, 5u);  // the fleet's record
  q.sink = "sink-b";
  q.min_messages = 4;
  page = a->Query(q).value();
  EXPECT_EQ(page.total, 2u);
  EXPECT_EQ(ips(page.records),
            (std::vector<std::string>{"192.0.2.2", "192.0.2.3"}));
  std::vector<SourceRecord> seen;
  ASSERT_TRUE(a->Scan(q, [&](const SourceRecord& r) {
                 seen.push_back(r);
                 return base::Status();
               }).ok());
  EXPECT_EQ(seen, page.records);
  q.sink = "sink-c";
  page = a->Query(q).value();
  EXPECT_EQ(page.total, 0u);
  EXPECT_TRUE(page.records.empty());
}

}  // namespace
}  // namespace ledger
