#include "ledger/trap_ledger.h"

#include <gtest/gtest.h>

#include "base/metrics.h"
#include "ledger/pg_test_util.h"
#include "ledger/postgres_store.h"

namespace ledger {
namespace {

constexpr double kHarvestTime = 1.75e9;

// Every case on both stores: the tables in SQLite and in PostgreSQL (a
// private server, pg_test_util.h) give the same answers.
class TrapLedgerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    keys_ = traps::KeyRing::Parse({"1:the-site-secret-key"}).value();
    base::Result<std::unique_ptr<TrapLedger>> l =
        base::Status::Error("unopened");
    if (GetParam() == "postgresql") {
      auto* pg = testing::PgCluster::Shared();
      if (pg == nullptr) GTEST_SKIP() << "no PostgreSQL server installed";
      PostgresOptions o;
      o.url = pg->NewDatabase();
      o.password = testing::PgCluster::kPassword;
      l = TrapLedger::OpenPostgres(o, keys_, 3600);
    } else {
      l = TrapLedger::Open(":memory:", keys_, 3600);
    }
    ASSERT_TRUE(l.ok()) << l.error();
    ledger_ = std::move(l).value();
  }
  // The harvest a visitor of the site leaves, and an address it saw.
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
  traps::KeyRing keys_;
  std::unique_ptr<TrapLedger> ledger_;
};

TEST_P(TrapLedgerTest, ValidTokensLinkTheSenderToTheHarvester) {
  std::string address;
  traps::Harvest h = Visit("192.0.2.10", "Harvester/2.0", &address);
  ledger_->AddHarvest(h);
  ledger_->AddHarvest(h);  // a second page in the same minute
  ledger_->AddSession("198.51.100.1", kHarvestTime + 3600, {address});
  ledger_->AddSession("198.51.100.1", kHarvestTime + 7200, {address});
  ASSERT_TRUE(ledger_->Flush().ok());

  auto links = ledger_->LinksOf("198.51.100.1");
  ASSERT_TRUE(links.ok());
  ASSERT_EQ(links->size(), 1u);
  const TrapLink& l = (*links)[0];
  EXPECT_EQ(l.harvester_ip, "192.0.2.10");
  EXPECT_EQ(l.user_agent, "Harvester/2.0");
  EXPECT_EQ(l.page, "/people/x/");
  EXPECT_TRUE(l.harvest_known);
  EXPECT_EQ(l.harvest_time, kHarvestTime);
  EXPECT_EQ(l.delay_seconds, 3600);
  EXPECT_EQ(l.hits, 2u);

  auto hs = ledger_->Harvesters(10);
  ASSERT_TRUE(hs.ok());
  ASSERT_EQ(hs->size(), 1u);
  EXPECT_EQ((*hs)[0].ip, "192.0.2.10");
  EXPECT_EQ((*hs)[0].pages, 2u);
  EXPECT_EQ((*hs)[0].addresses, 12u);
  EXPECT_EQ((*hs)[0].user_agents, std::vector<std::string>{"Harvester/2.0"});
  ASSERT_EQ((*hs)[0].senders.size(), 1u);
  EXPECT_EQ((*hs)[0].senders[0].ip, "198.51.100.1");
  EXPECT_EQ((*hs)[0].senders[0].delay_seconds, 3600);
  EXPECT_EQ(*ledger_->HarvesterIps(), std::vector<std::string>{"192.0.2.10"});
}

TEST_P(TrapLedgerTest, ForgedReplayedUnknownAndPlainAreOnlyCounted) {
  std::string address;
  ledger_->AddHarvest(Visit("192.0.2.10", "Harvester/2.0", &address));
  std::string local = address.substr(0, address.find('@'));
  std::string token = local.substr(local.rfind('.') + 1);
  std::string forged = address;
  forged[local.size() - 1] = forged[local.size() - 1] == 'a' ? 'b' : 'a';
  auto other =
      traps::KeyRing::Parse({"7:some-other-secret-key"}).value().current();
  ledger_->AddSession("198.51.100.2", kHarvestTime + 60,
                      {forged,                                 // forged
                       "bob.ray." + token + "@trap.example",   // replayed
                       address.substr(0, address.find('@')) +  // moved
                           "@other.trap.example",
                       traps::MakeAddress(other, "a.b", "trap.example", 1,
                                          29000000),  // unknown key
                       "ann.lee." + token.substr(1) + "@trap.example",  // cut
                       "postmaster@trap.example"});  // no token at all
  ASSERT_TRUE(ledger_->Flush().ok());
  EXPECT_TRUE(ledger_->LinksOf("198.51.100.2")->empty());
  EXPECT_TRUE((*ledger_->Harvesters(10))[0].senders.empty());
  auto domains = ledger_->Domains();
  ASSERT_TRUE(domains.ok());
  ASSERT_EQ(domains->size(), 2u);
  EXPECT_EQ((*domains)[0].domain, "trap.example");
  EXPECT_EQ((*domains)[0].recipients, 5u);
  EXPECT_EQ((*domains)[0].linked, 0u);
  EXPECT_EQ((*domains)[0].plain, 5u);
  EXPECT_EQ((*domains)[1].domain, "other.trap.example");
  EXPECT_EQ((*domains)[1].plain, 1u);
}

TEST_P(TrapLedgerTest, AValidTokenWithoutItsRecordStillLinks) {
  std::string address;
  Visit("192.0.2.10", "H", &address);  // its record never reached the store
  ledger_->AddSession("198.51.100.3", kHarvestTime + 120, {address});
  ASSERT_TRUE(ledger_->Flush().ok());
  auto links = ledger_->LinksOf("198.51.100.3");
  ASSERT_EQ(links->size(), 1u);
  EXPECT_FALSE((*links)[0].harvest_known);
  EXPECT_EQ((*links)[0].harvest_time, int64_t(kHarvestTime / 60) * 60.0);
  EXPECT_EQ((*ledger_->Domains())[0].linked, 1u);
}

// ledger.retention_days, with the time injected: old links and harvests
// go, a harvest whose addresses are still mailed stays.
TEST_P(TrapLedgerTest, RetentionExpiresOldLinksAndHarvests) {
  base::FakeClock clock;
  // Now is 100 days after the harvests.
  clock.Advance(std::chrono::seconds(
      int64_t(kHarvestTime - clock.WallSeconds()) + 100 * 86400));
  const double now = clock.WallSeconds();
  std::string a, b, c;
  ledger_->AddHarvest(Visit("192.0.2.10", "Old/1", &a));
  ledger_->AddHarvest(Visit("192.0.2.11", "StillUsed/1", &b));
  traps::Harvest fresh = Visit("192.0.2.12", "New/1", &c);
  fresh.time = now - 86400;
  ledger_->AddHarvest(fresh);
  ledger_->AddSession("198.51.100.1", kHarvestTime + 3600, {a});  // old spam
  ledger_->AddSession("198.51.100.2", now - 86400, {b});          // recent spam
  ASSERT_TRUE(ledger_->Flush().ok());

  // Retention off (the default, and <= 0): nothing goes.
  EXPECT_EQ(*ledger_->ExpireNow(), 0u);
  ledger_->SetRetention(0, &clock);
  EXPECT_EQ(*ledger_->ExpireNow(), 0u);
  ledger_->SetRetention(90, &clock);
  auto n = ledger_->ExpireNow();
  ASSERT_TRUE(n.ok()) << n.error();
  EXPECT_EQ(*n, 2u);  // 198.51.100.1's link and 192.0.2.10's harvest
  EXPECT_EQ(*ledger_->HarvesterIps(),
            (std::vector<std::string>{"192.0.2.11", "192.0.2.12"}));
  EXPECT_TRUE(ledger_->LinksOf("198.51.100.1")->empty());
  auto links = ledger_->LinksOf("198.51.100.2");
  ASSERT_EQ(links->size(), 1u);
  EXPECT_TRUE((*links)[0].harvest_known);
  EXPECT_EQ((*ledger_->Domains())[0].recipients, 2u);  // totals stay
  EXPECT_EQ(*ledger_->ExpireNow(), 0u);

  // 100 days on, the recent link is old too: it goes, its harvest with it,
  // and the fresh harvest (never mailed).
  clock.Advance(std::chrono::seconds(100 * 86400));
  EXPECT_EQ(*ledger_->ExpireNow(), 3u);
  EXPECT_TRUE(ledger_->HarvesterIps()->empty());
  EXPECT_TRUE(ledger_->LinksOf("198.51.100.2")->empty());
}

INSTANTIATE_TEST_SUITE_P(Stores, TrapLedgerTest,
                         ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

TEST(TrapLedger, TheQueueIsBounded) {
  auto keys = traps::KeyRing::Parse({"1:the-site-secret-key"}).value();
  auto l = TrapLedger::Open(":memory:", keys, 3600, 3);
  ASSERT_TRUE(l.ok());
  // Counted in the process's registry too (/metrics shows it).
  uint64_t before = base::CounterTotal(base::Counter::kTrapRecordsDropped);
  traps::Harvest h;
  for (int i = 0; i < 5; ++i) (*l)->AddHarvest(h);
  EXPECT_EQ((*l)->dropped(), 2u);
  EXPECT_EQ(base::CounterTotal(base::Counter::kTrapRecordsDropped), before + 2);
  (*l)->AddSession("198.51.100.1", 1, {"a@b", "c@d"});
  EXPECT_EQ((*l)->dropped(), 4u);
  EXPECT_EQ(base::CounterTotal(base::Counter::kTrapRecordsDropped), before + 4);
  auto metrics = base::RenderPrometheus(
      base::ServerMetrics(base::SnapshotCounters(), base::ServerGauges()));
  EXPECT_NE(metrics.find("spamsink_trap_records_dropped_total "),
            std::string::npos);
  ASSERT_TRUE((*l)->Flush().ok());
  EXPECT_EQ((*(*l)->Harvesters(10))[0].pages, 3u);
}

}  // namespace
}  // namespace ledger
