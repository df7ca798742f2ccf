// One suite, run against every Store: memory, SQLite, the fault wrapper
// (passing through) over SQLite, and PostgreSQL (a private cluster; skipped
// only where no server is installed: scripts/setup.sh installs one).
#include "ledger/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <functional>
#include <random>

#include "ledger/pg_test_util.h"
#include "ledger/postgres_store.h"
#include "ledger/sqlite_store.h"
#include "ledger/test_util.h"

namespace ledger {
namespace {

using testing::Ip;
using testing::TempDir;

struct Env {
  TempDir dir;
  std::unique_ptr<Store> inner;
  std::unique_ptr<Store> store;
};

using Factory = std::function<void(Env*)>;

struct Param {
  const char* name;
  Factory make;
};

void MakeMemory(Env* e) { e->store = NewMemoryStore(); }
void MakeSqlite(Env* e) {
  e->store = OpenSqliteStore(e->dir.File("s.db")).value();
}
void MakeFault(Env* e) {
  e->inner = OpenSqliteStore(e->dir.File("s.db")).value();
  e->store = std::make_unique<FaultStore>(e->inner.get());
}

void MakePostgres(Env* e) {
  auto* pg = testing::PgCluster::Shared();
  if (pg == nullptr) return;
  PostgresOptions o;
  o.url = pg->NewDatabase();
  o.password = testing::PgCluster::kPassword;
  o.sink_id = "test";
  auto s = OpenPostgresStore(o);
  ASSERT_TRUE(s.ok()) << s.error();
  e->store = std::move(s).value();
}

class StoreTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    env_ = std::make_unique<Env>();
    GetParam().make(env_.get());
    if (!env_->store) GTEST_SKIP() << "no PostgreSQL server installed";
    store_ = env_->store.get();
  }
  std::unique_ptr<Env> env_;
  Store* store_ = nullptr;
};

SourceRecord Delta(const std::string& ip, uint64_t messages, double seen) {
  SourceRecord r;
  r.ip = Ip(ip);
  r.first_seen = seen - 1;
  r.last_seen = seen;
  r.connections = 1;
  r.messages = messages;
  r.recipients = messages;
  r.bytes = messages * 1000;
  r.seconds_held = 1.5;
  r.tarpitted_sessions = 1;
  r.delay_seconds = 2.25;
  r.replies_stuttered = 3;
  r.slow_reads = messages;
  r.close_reasons[int(peer::CloseReason::kQuit)] = 1;
  MergeName(&r.helo_names, "helo-" + ip, 1);
  return r;
}

TEST_P(StoreTest, ApplyMergesAndGetReadsBack) {
  ASSERT_TRUE(
      store_->Apply({Delta("192.0.2.1", 2, 100), Delta("::1", 1, 50)}).ok());
  ASSERT_TRUE(store_->Apply({Delta("192.0.2.1", 3, 200)}).ok());
  auto got = store_->Get(Ip("192.0.2.1"));
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  SourceRecord want = Delta("192.0.2.1", 2, 100);
  MergeRecord(&want, Delta("192.0.2.1", 3, 200));
  EXPECT_EQ(**got, want);
  EXPECT_EQ((*got)->connections, 2u);
  EXPECT_EQ((*got)->messages, 5u);
  EXPECT_DOUBLE_EQ((*got)->first_seen, 99);
  EXPECT_DOUBLE_EQ((*got)->last_seen, 200);
  EXPECT_EQ((*got)->tarpitted_sessions, 2u);
  EXPECT_DOUBLE_EQ((*got)->delay_seconds, 4.5);
  EXPECT_EQ((*got)->replies_stuttered, 6u);
  EXPECT_EQ((*got)->slow_reads, 5u);
  auto missing = store_->Get(Ip("192.0.2.99"));
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  auto t = store_->GetTotals();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->sources, 2u);
  EXPECT_EQ(t->connections, 3u);
  EXPECT_EQ(t->messages, 6u);
  EXPECT_EQ(t->bytes, 6000u);
  EXPECT_DOUBLE_EQ(t->seconds_held, 4.5);
  // Two addresses created, the second Apply only merged.
  EXPECT_EQ(store_->Usage().created, 2u);
}

// 300 random records (some merged), many ties on every key.
std::vector<SourceRecord> RandomRecords() {
  std::mt19937 rng(42);
  std::vector<SourceRecord> all;
  for (int i = 0; i < 300; ++i) {
    std::string ip =
        i % 3 == 0
            ? "2001:db8:" + std::to_string(i % 7) + "::" + std::to_string(i)
            : "10." + std::to_string(i % 5) + ".0." + std::to_string(i % 250);
    SourceRecord r = Delta(ip, rng() % 6, 1000 + rng() % 100);
    r.bytes = rng() % 5000;
    r.seconds_held = (rng() % 1000) / 10.0;
    r.early_talker = rng() % 4 == 0;
    r.bare_lf = rng() % 3 == 0 ? 2 : 0;
    r.delay_seconds = rng() % 4 == 0 ? 0 : (rng() % 1000) / 8.0;  // ties
    all.push_back(r);
  }
  // Apply in two batches with unique IPs per batch.
  std::map<base::IpAddress, SourceRecord> merged;
  std::vector<SourceRecord> b1;
  for (const auto& r : all) {
    auto [it, fresh] = merged.try_emplace(r.ip, r);
    if (fresh) {
      b1.push_back(r);
    } else {
      MergeRecord(&it->second, r);
    }
  }
  std::vector<SourceRecord> reference;
  for (auto& [ip, r] : merged) reference.push_back(r);
  return reference;
}

TEST_P(StoreTest, QueryMatchesReferenceSemantics) {
  // Every query must give what RunQuery gives.
  std::vector<SourceRecord> reference = RandomRecords();
  ASSERT_TRUE(store_->Apply(reference).ok());

  std::vector<SourceQuery> queries(12);
  queries[1].sort = SortKey::kBytes;
  queries[2].sort = SortKey::kLastSeen;
  queries[2].ascending = true;
  queries[3].sort = SortKey::kSecondsHeld;
  queries[3].limit = 7;
  queries[3].offset = 5;
  queries[4].cidr = base::Cidr::Parse("10.2.0.0/16").value();
  queries[5].cidr = base::Cidr::Parse("2001:db8:3::/48").value();
  queries[5].sort = SortKey::kIp;
  queries[5].ascending = true;
  queries[6].evidence =
      uint32_t(Evidence::kEarlyTalker) | uint32_t(Evidence::kBareLf);
  queries[7].min_messages = 3;
  queries[7].since = 1030;
  queries[7].until = 1070;
  queries[8].limit = 0;
  queries[8].sort = SortKey::kConnections;
  queries[9].cidr = base::Cidr::Parse("0.0.0.0/0").value();
  queries[10].sort = SortKey::kDelaySeconds;
  queries[10].limit = 0;
  queries[11].sort = SortKey::kDelaySeconds;
  queries[11].ascending = true;
  queries[11].limit = 20;
  queries[11].offset = 60;  // past the zero-delay ties
  for (size_t i = 0; i < queries.size(); ++i) {
    auto got = store_->Query(queries[i]);
    ASSERT_TRUE(got.ok()) << got.error();
    auto want = RunQuery(queries[i], reference);
    EXPECT_EQ(got->total, want.total) << "query " << i;
    ASSERT_EQ(got->records.size(), want.records.size()) << "query " << i;
    for (size_t k = 0; k < want.records.size(); ++k) {
      EXPECT_EQ(got->records[k].ip, want.records[k].ip)
          << "query " << i << " row " << k;
    }
  }
}

// Walking the pages with the cursor of each page's last record visits
// every record once, in the order of one unpaged query, for every key and
// direction, with and without filters.
TEST_P(StoreTest, CursorPagesWalkTheWholeOrder) {
  std::vector<SourceRecord> reference = RandomRecords();
  ASSERT_TRUE(store_->Apply(reference).ok());
  for (SortKey key : {SortKey::kMessages, SortKey::kBytes, SortKey::kLastSeen,
                      SortKey::kSecondsHeld, SortKey::kConnections,
                      SortKey::kDelaySeconds, SortKey::kIp}) {
    for (bool asc : {false, true}) {
      for (int filtered = 0; filtered < 2; ++filtered) {
        SourceQuery q;
        q.sort = key;
        q.ascending = asc;
        if (filtered) q.cidr = base::Cidr::Parse("10.0.0.0/13").value();
        q.limit = 0;
        auto want = RunQuery(q, reference);
        std::string what = std::string(SortKeyName(key)) +
                           (asc ? " asc" : " desc") + (filtered ? " cidr" : "");
        q.limit = 7;
        std::vector<base::IpAddress> got;
        for (int page = 0; page < 100; ++page) {
          auto p = store_->Query(q);
          if (!p.ok() && q.after &&
              std::string(GetParam().name) == "postgresql") {
            EXPECT_NE(p.error().find("not supported"), std::string::npos);
            GTEST_SKIP() << "cursor paging: not in the postgresql store";
          }
          ASSERT_TRUE(p.ok()) << p.error();
          EXPECT_EQ(p->total, want.total) << what;
          for (const auto& r : p->records) got.push_back(r.ip);
          if (p->records.size() < q.limit) break;
          // Through the text form, as the API hands it out.
          auto c = ParseCursor(key, FormatCursor(key, p->records.back()));
          ASSERT_TRUE(c.ok()) << c.error();
          q.after = *c;
        }
        ASSERT_EQ(got.size(), want.records.size()) << what;
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_EQ(got[i], want.records[i].ip) << what << " row " << i;
        }
      }
    }
  }
}

TEST_P(StoreTest, ExpireDeletesOldRecordsAndAdjustsTotals) {
  ASSERT_TRUE(store_
                  ->Apply({Delta("192.0.2.1", 2, 100),
                           Delta("192.0.2.2", 5, 300), Delta("::2", 1, 150)})
                  .ok());
  auto n = store_->Expire(200);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  auto t = store_->GetTotals();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->sources, 1u);
  EXPECT_EQ(t->messages, 5u);
  EXPECT_EQ(t->connections, 1u);
  EXPECT_FALSE(store_->Get(Ip("192.0.2.1"))->has_value());
  EXPECT_TRUE(store_->Get(Ip("192.0.2.2"))->has_value());
  EXPECT_EQ(store_->Expire(200).value(), 0u);
}

// A retention sweep of more than one batch deletes the oldest batch per
// call, so the writer (and a shutdown) never waits on one huge transaction.
TEST_P(StoreTest, ExpireDeletesTheOldestBatchPerCall) {
  std::vector<SourceRecord> deltas;
  for (uint32_t i = 0; i < kExpireBatch + 3; ++i) {
    std::string ip = "10." + std::to_string(i >> 16) + "." +
                     std::to_string((i >> 8) & 255) + "." +
                     std::to_string(i & 255);
    // All are before the cutoff; the last three are the newest.
    deltas.push_back(Delta(ip, 1, 100 + i));
  }
  ASSERT_TRUE(store_->Apply(deltas).ok());
  auto n = store_->Expire(1e9);
  ASSERT_TRUE(n.ok()) << n.error();
  EXPECT_EQ(*n, kExpireBatch);
  EXPECT_FALSE(store_->Get(Ip("10.0.0.0"))->has_value());
  EXPECT_TRUE(store_->Get(deltas.back().ip)->has_value());
  EXPECT_EQ(store_->GetTotals()->sources, 3u);
  EXPECT_EQ(store_->Expire(1e9).value(), 3u);
  EXPECT_EQ(store_->Expire(1e9).value(), 0u);
  EXPECT_EQ(store_->GetTotals()->sources, 0u);
}

// Issue 13 item 1: the full addresses sampled inside an IPv6 network's
// record are kept, merged across batches, by every store.
TEST_P(StoreTest, KeepsTheAddressesSampledInANetwork) {
  auto net = [](int first, int count) {
    SourceRecord r = Delta("2001:db8:9::", 1, 100);
    for (int i = first; i < first + count; ++i) {
      SampleAddress(&r, Ip("2001:db8:9::" + std::to_string(i + 1)), 1);
    }
    return r;
  };
  ASSERT_TRUE(store_->Apply({net(0, 3)}).ok());
  ASSERT_TRUE(store_->Apply({net(2, 20)}).ok());
  SourceRecord want = net(0, 3);
  MergeRecord(&want, net(2, 20));
  auto got = store_->Get(Ip("2001:db8:9::"));
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->addresses, want.addresses);
  EXPECT_EQ((*got)->address_sketch, want.address_sketch);
  EXPECT_EQ((*got)->addresses.at(2).sessions, 2u);
  EXPECT_EQ((*got)->addresses.size(), kMaxSampledAddresses);
  // Records without a sample stay without one.
  ASSERT_TRUE(store_->Apply({Delta("192.0.2.1", 2, 100)}).ok());
  EXPECT_TRUE(store_->Get(Ip("192.0.2.1")).value()->addresses.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Stores, StoreTest,
    ::testing::Values(Param{"memory", MakeMemory}, Param{"sqlite", MakeSqlite},
                      Param{"fault_passthrough", MakeFault},
                      Param{"postgresql", MakePostgres}),
    [](const auto& info) { return std::string(info.param.name); });

// SQLite-only behaviour.

TEST(SqliteStore, SurvivesReopenAndIsWal) {
  TempDir dir;
  std::string path = dir.File("s.db");
  {
    auto s = OpenSqliteStore(path).value();
    ASSERT_TRUE(s->Apply({Delta("198.51.100.7", 4, 10)}).ok());
  }
  auto s = OpenSqliteStore(path).value();
  auto got = s->Get(Ip("198.51.100.7"));
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->messages, 4u);
  EXPECT_EQ((*got)->helo_names.at(0).name, "helo-198.51.100.7");

  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)),
               "wal");
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), kSchemaVersion);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST(SqliteStore, RefusesNewerSchemaAndForeignFiles) {
  TempDir dir;
  std::string path = dir.File("s.db");
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto s = OpenSqliteStore(path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("newer"), std::string::npos) << s.error();

  SqliteOptions ro;
  ro.read_only = true;
  auto r = OpenSqliteStore(dir.File("absent.db"), ro);
  EXPECT_FALSE(r.ok());
}

// Turns a current database back into the given older schema version, as an
// older build would have left it.
void Downgrade(const std::string& path, int version) {
  std::string sql;
  if (version < 5) sql += "ALTER TABLE sources DROP COLUMN addresses; ";
  if (version < 4) sql += "DROP TABLE source_hours; DROP TABLE hours; ";
  if (version < 3) {
    sql +=
        "DROP INDEX sources_by_delay_seconds; "
        "ALTER TABLE sources DROP COLUMN tarpitted_sessions; "
        "ALTER TABLE sources DROP COLUMN delay_seconds; "
        "ALTER TABLE sources DROP COLUMN replies_stuttered; "
        "ALTER TABLE sources DROP COLUMN slow_reads; ";
  }
  if (version < 2) sql += "DROP INDEX sources_with_evidence; ";
  sql += "PRAGMA user_version=" + std::to_string(version);
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
      << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// How many schema objects (tables, indexes) are named name.
int SchemaObjects(const std::string& path, const std::string& name) {
  sqlite3* db;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st;
  sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = ?",
                     -1, &st, nullptr);
  sqlite3_bind_text(st, 1, name.c_str(), -1, SQLITE_TRANSIENT);
  int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

TEST(SqliteStore, MigratesAnOlderSchema) {
  TempDir dir;
  std::string path = dir.File("s.db");
  {
    auto s = OpenSqliteStore(path).value();
    ASSERT_TRUE(s->Apply({Delta("192.0.2.8", 2, 10)}).ok());
  }
  Downgrade(path, 1);
  ASSERT_EQ(SchemaObjects(path, "sources_with_evidence"), 0);
  SqliteOptions ro;
  ro.read_only = true;
  ASSERT_TRUE(OpenSqliteStore(path, ro).ok());  // readable as it is
  auto s = OpenSqliteStore(path);
  ASSERT_TRUE(s.ok()) << s.error();
  auto got = (*s)->Get(Ip("192.0.2.8")).value();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->messages, 2u);
  EXPECT_EQ(got->tarpitted_sessions, 0u);  // the column came back empty
  EXPECT_EQ(SchemaObjects(path, "sources_with_evidence"), 1);
  EXPECT_EQ(SchemaObjects(path, "sources_by_delay_seconds"), 1);
  EXPECT_EQ(SchemaObjects(path, "source_hours"), 1);
  EXPECT_EQ(SchemaObjects(path, "hours"), 1);
}

TEST(SqliteStore, MigratesVersion2AddingTarpitColumns) {
  TempDir dir;
  std::string path = dir.File("s.db");
  {
    auto s = OpenSqliteStore(path).value();
    ASSERT_TRUE(
        s->Apply({Delta("192.0.2.8", 2, 10), Delta("192.0.2.9", 1, 20)}).ok());
  }
  Downgrade(path, 2);

  // spamsink export of this build still reads a version 2 file, tarpit
  // fields as zero, and can sort by them.
  SqliteOptions ro;
  ro.read_only = true;
  {
    auto r = OpenSqliteStore(path, ro);
    ASSERT_TRUE(r.ok()) << r.error();
    auto got = (*r)->Get(Ip("192.0.2.8")).value();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->messages, 2u);
    EXPECT_EQ(got->helo_names.at(0).name, "helo-192.0.2.8");
    EXPECT_EQ(got->tarpitted_sessions, 0u);
    EXPECT_DOUBLE_EQ(got->delay_seconds, 0);
    SourceQuery q;
    q.sort = SortKey::kDelaySeconds;
    auto page = (*r)->Query(q);
    ASSERT_TRUE(page.ok()) << page.error();
    ASSERT_EQ(page->records.size(), 2u);
    EXPECT_EQ(page->records[0].ip, Ip("192.0.2.8"));  // tie at 0: by IP
    // No hourly tables before version 4: none to read, no error.
    auto hours = (*r)->SourceHours(Ip("192.0.2.8"), 0);
    ASSERT_TRUE(hours.ok()) << hours.error();
    EXPECT_TRUE(hours->empty());
  }

  {
    auto s = OpenSqliteStore(path);
    ASSERT_TRUE(s.ok()) << s.error();
    auto got = (*s)->Get(Ip("192.0.2.9")).value();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->messages, 1u);
    EXPECT_EQ(got->slow_reads, 0u);
    SourceRecord d = Delta("192.0.2.9", 1, 30);
    d.delay_seconds = 40;
    ASSERT_TRUE((*s)->Apply({d}).ok());
    EXPECT_EQ((*s)->GetTotals()->sources, 2u);
  }
  EXPECT_EQ(SchemaObjects(path, "sources_by_delay_seconds"), 1);
  auto s = OpenSqliteStore(path).value();
  auto got = s->Get(Ip("192.0.2.9")).value();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->messages, 2u);
  EXPECT_EQ(got->tarpitted_sessions, 1u);
  EXPECT_DOUBLE_EQ(got->delay_seconds, 40);
  EXPECT_EQ(got->replies_stuttered, 3u);
  EXPECT_EQ(got->slow_reads, 1u);
  SourceQuery q;
  q.sort = SortKey::kDelaySeconds;
  auto page = s->Query(q);
  ASSERT_TRUE(page.ok()) << page.error();
  ASSERT_EQ(page->records.size(), 2u);
  EXPECT_EQ(page->records[0].ip, Ip("192.0.2.9"));
}

TEST(SqliteStore, ReadOnlyReadsButRefusesWrites) {
  TempDir dir;
  std::string path = dir.File("s.db");
  auto w = OpenSqliteStore(path).value();
  ASSERT_TRUE(w->Apply({Delta("203.0.113.5", 1, 10)}).ok());
  SqliteOptions o;
  o.read_only = true;
  auto r = OpenSqliteStore(path, o);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((*r)->GetTotals()->sources, 1u);
  EXPECT_DOUBLE_EQ((*r)->Get(Ip("203.0.113.5")).value()->delay_seconds, 2.25);
  EXPECT_FALSE((*r)->Apply({Delta("203.0.113.6", 1, 10)}).ok());
}

TEST(FaultStore, FailsWhenToldAndAppliesNothing) {
  auto mem = NewMemoryStore();
  FaultStore f(mem.get());
  f.FailWrites(2, "disk full");
  auto s = f.Apply({Delta("192.0.2.1", 1, 1)});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "disk full");
  EXPECT_FALSE(f.Expire(0).ok());
  EXPECT_TRUE(f.Apply({Delta("192.0.2.1", 1, 1)}).ok());
  EXPECT_EQ(f.write_calls(), 3);
  EXPECT_EQ(f.failed_writes(), 2);
  EXPECT_EQ(mem->GetTotals()->connections, 1u);
  f.FailReads(true);
  EXPECT_FALSE(f.GetTotals().ok());
  EXPECT_FALSE(f.Query({}).ok());
}

}  // namespace
}  // namespace ledger
