// The hourly rows (ledger/hourly.h) in every store (memory, SQLite,
// PostgreSQL on a private cluster), and the ledger's use of them: the day
// chart after a restart, the per-source timeline, expiry.
#include "ledger/hourly.h"

#include <gtest/gtest.h>

#include <functional>

#include "ledger/ledger.h"
#include "ledger/pg_test_util.h"
#include "ledger/postgres_store.h"
#include "ledger/sqlite_store.h"
#include "ledger/test_util.h"

namespace ledger {
namespace {

using testing::Ip;
using testing::Session;
using testing::TempDir;

constexpr double kHour0 = 472222.0 * 3600;  // an hour start near 1.7e9

struct Param {
  const char* name;
  std::function<std::unique_ptr<Store>(TempDir*)> make;
};

std::unique_ptr<Store> MakePostgres(TempDir*) {
  auto* pg = testing::PgCluster::Shared();
  if (pg == nullptr) return nullptr;
  PostgresOptions o;
  o.url = pg->NewDatabase();
  o.password = testing::PgCluster::kPassword;
  o.sink_id = "test";
  auto s = OpenPostgresStore(o);
  EXPECT_TRUE(s.ok()) << s.error();
  return s.ok() ? std::move(s).value() : nullptr;
}

class HourlyTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    store_ = GetParam().make(&dir_);
    if (!store_) GTEST_SKIP() << "no PostgreSQL server installed";
  }
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

SourceRecord Delta(const std::string& ip, uint64_t sessions, uint64_t messages,
                   double seen) {
  SourceRecord r;
  r.ip = Ip(ip);
  r.first_seen = seen - 1;
  r.last_seen = seen;
  r.connections = sessions;
  r.messages = messages;
  return r;
}

TEST_P(HourlyTest, BatchesAddPerSourceAndPerSinkHours) {
  const double h0 = kHour0, h1 = kHour0 + 3600;
  ASSERT_TRUE(store_
                  ->Apply({Delta("192.0.2.1", 2, 3, h0 + 10),
                           Delta("192.0.2.2", 1, 0, h0 + 3599.5)})
                  .ok());
  // The same hour again (adds), then the next hour; 192.0.2.1 is known.
  ASSERT_TRUE(store_->Apply({Delta("192.0.2.1", 1, 1, h0 + 20)}).ok());
  ASSERT_TRUE(store_
                  ->Apply({Delta("192.0.2.1", 4, 0, h1 + 1),
                           Delta("2001:db8::1", 1, 5, h1 + 2)})
                  .ok());

  auto one = store_->SourceHours(Ip("192.0.2.1"), h0 - 86400);
  ASSERT_TRUE(one.ok()) << one.error();
  EXPECT_EQ(*one, (std::vector<HourCounts>{{int64_t(h0), 3, 4, 0},
                                           {int64_t(h1), 4, 0, 0}}));
  // since is rounded down to its hour: h1 + 1800 still includes h1.
  one = store_->SourceHours(Ip("192.0.2.1"), h1 + 1800);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, (std::vector<HourCounts>{{int64_t(h1), 4, 0, 0}}));
  auto none = store_->SourceHours(Ip("192.0.2.9"), h0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  auto all = store_->Hours(h0);
  ASSERT_TRUE(all.ok()) << all.error();
  EXPECT_EQ(*all, (std::vector<HourCounts>{{int64_t(h0), 4, 4, 2},
                                           {int64_t(h1), 5, 5, 1}}));
}

TEST_P(HourlyTest, ExpireIsBoundedPerCallAndKeepsRecentHours) {
  const double old = kHour0, recent = kHour0 + 10 * 3600;
  std::vector<SourceRecord> batch;
  const int extra = 7;
  for (uint64_t i = 0; i < kHourlyExpireLimit + extra; ++i) {
    SourceRecord r = Delta("10.0.0.0", 1, 1, old);
    r.ip = base::IpAddress::FromV4(0x0a000000u + uint32_t(i));
    batch.push_back(r);
  }
  ASSERT_TRUE(store_->Apply(batch).ok());
  ASSERT_TRUE(store_->Apply({Delta("192.0.2.1", 1, 1, recent)}).ok());

  auto n = store_->ExpireHours(recent);
  ASSERT_TRUE(n.ok()) << n.error();
  // The per-source rows stop at the limit; the per-sink row of that hour
  // goes too.
  EXPECT_EQ(*n, kHourlyExpireLimit + 1);
  n = store_->ExpireHours(recent);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, uint64_t(extra));
  n = store_->ExpireHours(recent);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  auto all = store_->Hours(old);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, (std::vector<HourCounts>{{int64_t(recent), 1, 1, 1}}));
  auto one = store_->SourceHours(Ip("192.0.2.1"), old);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Stores, HourlyTest,
    ::testing::Values(Param{"memory",
                            [](TempDir*) { return NewMemoryStore(); }},
                      Param{"sqlite",
                            [](TempDir* d) {
                              return OpenSqliteStore(d->File("h.db")).value();
                            }},
                      Param{"postgresql", MakePostgres}),
    [](const auto& info) { return std::string(info.param.name); });

// The Overview's day chart comes back after a restart: the new ledger's
// ring starts from the store's per-sink hours.
TEST(LedgerHours, RestartKeepsTheDayChart) {
  TempDir dir;
  base::FakeClock clock;
  double now = clock.WallSeconds();
  Options config;
  {
    auto l = Ledger::Create(OpenSqliteStore(dir.File("l.db")).value(), config,
                            &clock, false);
    l->Record(Session("192.0.2.1", 2, 10, now - 3600));
    l->Record(Session("192.0.2.2", 1, 10, now - 3600));
    ASSERT_TRUE(l->Flush().ok());
    clock.Advance(std::chrono::hours(1));
    l->Record(Session("192.0.2.1", 1, 10, now));
    ASSERT_TRUE(l->Flush().ok());
  }
  auto l = Ledger::Create(OpenSqliteStore(dir.File("l.db")).value(), config,
                          &clock, false);
  double first = 0;
  auto h = l->HourlySeries(&first);
  ASSERT_EQ(h.size(), size_t(kHourlyBuckets));
  int64_t last_hour = HourOf(now);
  ASSERT_EQ(int64_t(first) + 23 * 3600, HourOf(clock.WallSeconds()));
  size_t i = size_t((last_hour - int64_t(first)) / 3600);
  ASSERT_GE(i, 1u);
  EXPECT_EQ(h[i - 1].connections, 2u);
  EXPECT_EQ(h[i - 1].messages, 3u);
  EXPECT_EQ(h[i - 1].new_sources, 2u);
  EXPECT_EQ(h[i].connections, 1u);
  EXPECT_EQ(h[i].new_sources, 0u);
  // And it goes on counting from there.
  l->Record(Session("192.0.2.3", 1, 10, now));
  ASSERT_TRUE(l->Flush().ok());
  EXPECT_EQ(l->HourlySeries().back().connections, h.back().connections + 1);

  auto tl = l->SourceHours(Ip("192.0.2.1"), now - 86400);
  ASSERT_TRUE(tl.ok());
  ASSERT_EQ(tl->size(), 2u);
  EXPECT_EQ((*tl)[0].sessions, 1u);
  EXPECT_EQ((*tl)[1].sessions, 1u);

  // Past hourly_retention_days the rows go.
  clock.Advance(std::chrono::hours(24 * 15));
  EXPECT_FALSE(l->ExpireHoursNow());
  tl = l->SourceHours(Ip("192.0.2.1"), now - 86400);
  ASSERT_TRUE(tl.ok());
  EXPECT_TRUE(tl->empty());
}

}  // namespace
}  // namespace ledger
