// The trap tables in the fleet's PostgreSQL database: what only a shared
// database has (several sinks, its schema version, text it refuses). The
// cases every store shares are in trap_ledger_test.cc.
#include <gtest/gtest.h>

#include <thread>

#include "ledger/pg_test_util.h"
#include "ledger/trap_ledger.h"
#include "ledger/trap_tables.h"

namespace ledger {
namespace {

using testing::PgCluster;

constexpr double kHarvestTime = 1.75e9;

class TrapPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = PgCluster::Shared();
    if (pg_ == nullptr) GTEST_SKIP() << "no PostgreSQL server installed";
    url_ = pg_->NewDatabase();
    keys_ = traps::KeyRing::Parse({"1:the-fleet-trap-key"}).value();
  }
  // A sink of the fleet: its own trap ledger on the shared database.
  std::unique_ptr<TrapLedger> Sink(const std::string& url = "") {
    PostgresOptions o;
    o.url = url.empty() ? url_ : url;
    o.password = PgCluster::kPassword;
    auto l = TrapLedger::OpenPostgres(o, keys_, 3600);
    EXPECT_TRUE(l.ok()) << l.error();
    return l.ok() ? std::move(l).value() : nullptr;
  }
  traps::Harvest Visit(const std::string& ip, const std::string& ua,
                       std::string* address) {
    traps::Harvest h;
    h.minute = int64_t(kHarvestTime / 60);
    h.ref = traps::VisitorRef(keys_.current(), ip, ua, h.minute);
    h.ip = ip;
    h.user_agent = ua;
    h.page = "/people/x/";
    h.time = kHarvestTime;
    h.addresses = 6;
    *address = traps::MakeAddress(keys_.current(), "ann.lee", "trap.example",
                                  h.ref, h.minute);
    return h;
  }
  std::string Scalar(const std::string& sql) {
    return PgCluster::Scalar(url_, sql);
  }

  PgCluster* pg_ = nullptr;
  std::string url_;
  traps::KeyRing keys_;
};

// Sink A's trap site records the harvest; the spam arrives at sink B.
TEST_F(TrapPostgresTest, AHarvestAtOneSinkLinksMailAtAnother) {
  auto a = Sink(), b = Sink();
  ASSERT_TRUE(a && b);
  std::string address;
  a->AddHarvest(Visit("192.0.2.10", "Harvester/2.0", &address));
  ASSERT_TRUE(a->Flush().ok());
  b->AddSession("198.51.100.1", kHarvestTime + 3600, {address});
  b->AddSession("198.51.100.1", kHarvestTime + 7200, {address});
  ASSERT_TRUE(b->Flush().ok());

  for (auto* sink : {a.get(), b.get()}) {  // both see the fleet's facts
    auto links = sink->LinksOf("198.51.100.1");
    ASSERT_TRUE(links.ok()) << links.error();
    ASSERT_EQ(links->size(), 1u);
    EXPECT_EQ((*links)[0].harvester_ip, "192.0.2.10");
    EXPECT_EQ((*links)[0].user_agent, "Harvester/2.0");
    EXPECT_TRUE((*links)[0].harvest_known);
    EXPECT_EQ((*links)[0].harvest_time, kHarvestTime);
    EXPECT_EQ((*links)[0].delay_seconds, 3600);
    EXPECT_EQ((*links)[0].hits, 2u);
    auto hs = sink->Harvesters(10);
    ASSERT_TRUE(hs.ok()) << hs.error();
    ASSERT_EQ(hs->size(), 1u);
    ASSERT_EQ((*hs)[0].senders.size(), 1u);
    EXPECT_EQ((*hs)[0].senders[0].ip, "198.51.100.1");
    EXPECT_EQ((*hs)[0].senders[0].delay_seconds, 3600);
    EXPECT_EQ((*sink->Domains())[0].linked, 2u);
  }
}

// Two sinks writing the same rows at once: no deadlock, no lost count.
TEST_F(TrapPostgresTest, SinksWritingTheSameRowsAtOnceCountExactly) {
  auto a = Sink(), b = Sink();
  ASSERT_TRUE(a && b);
  std::string x, y;
  traps::Harvest hx = Visit("192.0.2.10", "X", &x);
  traps::Harvest hy = Visit("192.0.2.11", "Y", &y);
  constexpr int kBatches = 20;
  auto run = [&](TrapLedger* l, bool reverse) {
    for (int i = 0; i < kBatches; ++i) {
      l->AddHarvest(reverse ? hy : hx);
      l->AddHarvest(reverse ? hx : hy);
      l->AddSession("198.51.100.1", kHarvestTime + 60 + i,
                    reverse ? std::vector<std::string>{y, x}
                            : std::vector<std::string>{x, y});
      EXPECT_TRUE(l->Flush().ok());
    }
  };
  std::thread ta(run, a.get(), false), tb(run, b.get(), true);
  ta.join();
  tb.join();
  auto hs = a->Harvesters(10);
  ASSERT_TRUE(hs.ok());
  ASSERT_EQ(hs->size(), 2u);
  for (const auto& h : *hs) {
    EXPECT_EQ(h.pages, 2u * kBatches);
    ASSERT_EQ(h.senders.size(), 1u);
    EXPECT_EQ(h.senders[0].hits, 2u * kBatches);
  }
  EXPECT_EQ((*a->Domains())[0].recipients, 4u * kBatches);
}

TEST_F(TrapPostgresTest, SchemaIsVersionedAndANewerOneRefused) {
  ASSERT_TRUE(Sink());
  ASSERT_TRUE(Sink());  // opening again migrates nothing
  EXPECT_EQ(Scalar("SELECT version FROM trap_schema"),
            std::to_string(kPostgresTrapSchemaVersion));
  EXPECT_EQ(Scalar("SELECT count(*) FROM trap_schema"), "1");
  // The sources' schema is the store's business, not the trap tables'.
  EXPECT_EQ(Scalar("SELECT to_regclass('spamsink_schema') IS NULL"), "t");
  EXPECT_EQ(Scalar("UPDATE trap_schema SET version = 99 RETURNING version"),
            "99");
  PostgresOptions o;
  o.url = url_;
  o.password = PgCluster::kPassword;
  auto l = TrapLedger::OpenPostgres(o, keys_, 3600);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().find("ledger.postgresql_url"), std::string::npos);
  EXPECT_NE(l.error().find("newer"), std::string::npos);
}

// What a client sent is not always text PostgreSQL takes: it is stored
// with '?' for each bad byte instead of failing the batch.
TEST_F(TrapPostgresTest, BytesThatAreNotUtf8DoNotLoseTheBatch) {
  auto a = Sink();
  ASSERT_TRUE(a);
  std::string address;
  traps::Harvest h =
      Visit("192.0.2.10", std::string("Bad\xff\xc0\xaf\0ua\xe2\x82\xac", 12),
            &address);
  a->AddHarvest(h);
  a->AddSession("198.51.100.1", kHarvestTime + 1,
                {address, std::string("x@tr\xfe\0p.example", 15)});
  ASSERT_TRUE(a->Flush().ok());
  auto hs = a->Harvesters(10);
  ASSERT_TRUE(hs.ok());
  ASSERT_EQ(hs->size(), 1u);
  EXPECT_EQ((*hs)[0].user_agents,
            std::vector<std::string>{"Bad????ua\xe2\x82\xac"});
  EXPECT_EQ((*hs)[0].senders.size(), 1u);
  auto ds = a->Domains();
  ASSERT_EQ(ds->size(), 2u);
  EXPECT_TRUE((*ds)[0].domain == "tr??p.example" ||
              (*ds)[1].domain == "tr??p.example");
}

// A bad URL names the setting and hides nothing it should not show.
TEST_F(TrapPostgresTest, AnUnreachableDatabaseNamesTheSetting) {
  PostgresOptions o;
  o.url = "host=" + pg_->dir() + " port=5432 user=nobody dbname=none";
  o.password = "wrong";
  auto l = TrapLedger::OpenPostgres(o, keys_, 3600);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().find("ledger.postgresql_url"), std::string::npos);
  EXPECT_EQ(l.error().find("wrong"), std::string::npos);
}

}  // namespace
}  // namespace ledger
