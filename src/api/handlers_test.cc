#include "api/handlers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/metrics.h"
#include "ledger/pg_test_util.h"
#include "ledger/postgres_store.h"
#include "ledger/test_util.h"

namespace api {
namespace {

using ledger::testing::Session;
using nlohmann::json;
using ::testing::HasSubstr;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger::Options o;
    o.ipv6_prefix = 128;  // the /64 aggregation: ledger_test
    o.sink_id = "sink-here";
    ledger_ =
        ledger::Ledger::Create(ledger::NewMemoryStore(), o, &clock_, false);
    now_ = clock_.WallSeconds();
    auto a = Session("192.0.2.1", 5, 5000, now_ - 100, 30);
    a.early_talker = true;
    a.tarpitted = true;
    a.delay_seconds = 12.5;
    a.replies_stuttered = 3;
    a.slow_reads = 2;
    peer::AddName(&a.helo_names, "spammer.example");
    ledger_->Record(a);
    ledger_->Record(Session("192.0.2.1", 1, 100, now_ - 50, 1));
    auto b = Session("198.51.100.2", 2, 90000, now_ - 10, 600);
    b.tarpitted = true;
    b.delay_seconds = 4;
    ledger_->Record(b);
    ledger_->Record(Session("2001:db8::9", 0, 0, now_ - 5000, 5));
    ASSERT_TRUE(ledger_->Flush().ok());
  }

  Response Get(const std::string& path, ledger::Params params = {},
               const std::string& auth = "") {
    Api api(ledger_.get(), options_, &clock_);
    api.SetTraps(traps_);
    if (more_metrics_) api.AddMetrics(more_metrics_);
    Request r;
    r.path = path;
    r.params = std::move(params);
    r.authorization = auth;
    Response out = api.Handle(r);
    if (out.stream) {
      auto s = out.stream([&](std::string_view text) {
        out.body += text;
        return true;
      });
      EXPECT_TRUE(s.ok()) << s.message();
    }
    return out;
  }

  static json Body(const Response& r) { return json::parse(r.body); }

  base::FakeClock clock_;
  double now_ = 0;
  std::unique_ptr<ledger::Ledger> ledger_;
  ledger::TrapLedger* traps_ = nullptr;
  Api::MetricsSource more_metrics_;
  ApiOptions options_;
};

TEST_F(ApiTest, SourcesDefaultOrderIsByMessages) {
  auto r = Get("/api/v1/sources");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  auto j = Body(r);
  EXPECT_EQ(j["total"], 3);
  ASSERT_EQ(j["sources"].size(), 3u);
  EXPECT_EQ(j["sources"][0]["ip"], "192.0.2.1");
  EXPECT_EQ(j["sources"][0]["messages"], 6);
  EXPECT_EQ(j["sources"][0]["connections"], 2);
  EXPECT_EQ(j["sources"][0]["bytes"], 5100);
  EXPECT_EQ(j["sources"][0]["evidence"]["early_talker"], 1);
  EXPECT_EQ(j["sources"][0]["helo_names"][0]["name"], "spammer.example");
  EXPECT_EQ(j["sources"][0]["tarpit"], json({{"sessions", 1},
                                             {"delay_seconds", 12.5},
                                             {"replies_stuttered", 3},
                                             {"slow_reads", 2}}));
  EXPECT_EQ(j["sources"][1]["ip"], "198.51.100.2");
  EXPECT_EQ(j["sort"], "messages");
  EXPECT_EQ(j["order"], "desc");
}

TEST_F(ApiTest, SourcesFiltersSortAndPage) {
  auto j =
      Body(Get("/api/v1/sources", {{"sort", "seconds_held"}, {"limit", "1"}}));
  EXPECT_EQ(j["total"], 3);
  ASSERT_EQ(j["sources"].size(), 1u);
  EXPECT_EQ(j["sources"][0]["ip"], "198.51.100.2");
  j = Body(Get("/api/v1/sources", {{"cidr", "2001:db8::/32"}}));
  EXPECT_EQ(j["total"], 1);
  j = Body(Get("/api/v1/sources", {{"since", std::to_string(now_ - 60)}}));
  EXPECT_EQ(j["total"], 2);
  j = Body(Get("/api/v1/sources", {{"evidence", "early_talker"}}));
  EXPECT_EQ(j["total"], 1);
  j = Body(Get("/api/v1/sources", {{"min_messages", "2"}, {"sort", "bytes"}}));
  EXPECT_EQ(j["total"], 2);
  EXPECT_EQ(j["sources"][0]["ip"], "198.51.100.2");
  j = Body(Get("/api/v1/sources", {{"offset", "2"}}));
  EXPECT_EQ(j["sources"][0]["ip"], "2001:db8::9");
  j = Body(Get("/api/v1/sources", {{"sort", "delay_seconds"}}));
  EXPECT_EQ(j["sort"], "delay_seconds");
  ASSERT_EQ(j["sources"].size(), 3u);
  EXPECT_EQ(j["sources"][0]["ip"], "192.0.2.1");     // 12.5 s
  EXPECT_EQ(j["sources"][1]["ip"], "198.51.100.2");  // 4 s
  j = Body(Get("/api/v1/sources",
               {{"sort", "delay_seconds"}, {"order", "asc"}, {"limit", "1"}}));
  EXPECT_EQ(j["sources"][0]["ip"], "2001:db8::9");
}

// One sink's own ledger (no per-sink rows): sink= its own sink_id selects
// everything, another sink_id nothing, in pages and exports alike.
TEST_F(ApiTest, SinkFilterWithALocalStoreMatchesOnlyThisSink) {
  auto j = Body(Get("/api/v1/sources", {{"sink", "sink-here"}}));
  EXPECT_EQ(j["total"], 3);
  EXPECT_EQ(j["sink"], "sink-here");
  EXPECT_EQ(j["sources"].size(), 3u);
  j = Body(Get("/api/v1/sources", {{"sink", "sink-elsewhere"}}));
  EXPECT_EQ(j["total"], 0);
  EXPECT_EQ(j["sources"].size(), 0u);
  EXPECT_EQ(
      Get("/api/v1/export", {{"format", "plain"}, {"sink", "sink-here"}}).body,
      "192.0.2.1\n198.51.100.2\n");
  auto r = Get("/api/v1/export", {{"format", "plain"}, {"sink", "other"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(Get("/api/v1/sources", {{"sink", ""}}).status, 400);
}

TEST_F(ApiTest, BadParametersAre400) {
  for (const ledger::Params& p : {ledger::Params{{"cidr", "10.0.0.0/99"}},
                                  {{"limit", "100000"}},
                                  {{"sort", "colour"}},
                                  {{"evidence", "x"}},
                                  {{"bogus", "1"}}}) {
    auto r = Get("/api/v1/sources", p);
    EXPECT_EQ(r.status, 400) << p.begin()->first;
    EXPECT_TRUE(Body(r).contains("error"));
  }
  auto r = Get("/api/v1/sources/not-an-ip");
  EXPECT_EQ(r.status, 400);
}

// Pages chain through "next"; the last page's next is null; an offset
// beyond the bound is a 400 that names the cursor.
TEST_F(ApiTest, SourcesPageWithTheNextCursor) {
  std::vector<std::string> seen;
  ledger::Params p{{"limit", "2"}};
  json j;
  for (int page = 0; page < 4; ++page) {
    j = Body(Get("/api/v1/sources", p));
    for (const auto& s : j["sources"]) seen.push_back(s["ip"]);
    if (j["next"].is_null()) break;
    p = {{"limit", "2"}, {"after", j["next"].get<std::string>()}};
  }
  EXPECT_TRUE(j["next"].is_null());
  EXPECT_EQ(seen, (std::vector<std::string>{"192.0.2.1", "198.51.100.2",
                                            "2001:db8::9"}));
  auto r = Get("/api/v1/sources", {{"offset", "100001"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("after="));
  EXPECT_EQ(Get("/api/v1/sources", {{"offset", "100000"}}).status, 200);
}

TEST_F(ApiTest, OneSourceOr404) {
  auto r = Get("/api/v1/sources/2001:db8::9");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["ip"], "2001:db8::9");
  EXPECT_EQ(Body(r)["tarpit"]["sessions"], 0);
  r = Get("/api/v1/sources/198.51.100.2");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["tarpit"]["sessions"], 1);
  EXPECT_EQ(Body(r)["tarpit"]["delay_seconds"], 4.0);
  r = Get("/api/v1/sources/203.0.113.1");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(Body(r)["error"].get<std::string>(), HasSubstr("203.0.113.1"));
  EXPECT_EQ(Get("/api/v2/nothing").status, 404);
  EXPECT_EQ(Get("/nothing").status, 404);
  EXPECT_EQ(Get("/").status, 200);  // the console (dashboard_test.cc)
}

TEST_F(ApiTest, StatsTotalsAndRates) {
  auto r = Get("/api/v1/stats");
  ASSERT_EQ(r.status, 200);
  auto j = Body(r);
  EXPECT_EQ(j["totals"]["sources"], 3);
  EXPECT_EQ(j["totals"]["connections"], 4);
  EXPECT_EQ(j["totals"]["messages"], 8);
  EXPECT_EQ(j["last_minute"]["connections"], 4);
  EXPECT_DOUBLE_EQ(j["last_minute"]["connections_per_second"].get<double>(),
                   4.0 / 60);
  EXPECT_TRUE(j["server"].contains("connections_accepted_total"));
}

TEST_F(ApiTest, CostIsHeldSecondsPerCpuSecond) {
  options_.cpu_seconds = [] { return 2.0; };
  auto r = Get("/api/v1/cost");
  ASSERT_EQ(r.status, 200);
  auto j = Body(r);
  double held = j["sender_connection_seconds"].get<double>();
  EXPECT_DOUBLE_EQ(held, 636.0);  // 30 + 1 + 600 + 5 seconds recorded
  EXPECT_DOUBLE_EQ(j["server_cpu_seconds"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(j["connection_seconds_per_cpu_second"].get<double>(), 318.0);
  EXPECT_TRUE(j["tarpit"].contains("replies_stuttered"));
}

TEST_F(ApiTest, ExportFormats) {
  auto r = Get("/api/v1/export", {{"format", "plain"}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  // 2001:db8::9 only connected (0 messages): listed only when asked for.
  EXPECT_EQ(r.body, "192.0.2.1\n198.51.100.2\n");
  r = Get("/api/v1/export", {{"format", "plain"}, {"min_messages", "0"}});
  EXPECT_EQ(r.body, "192.0.2.1\n198.51.100.2\n2001:db8::9\n");
  r = Get("/api/v1/export",
          {{"format", "cidr"}, {"min_messages", "1"}, {"v4_prefix", "16"}});
  EXPECT_EQ(r.body, "192.0.0.0/16\n198.51.0.0/16\n");
  r = Get("/api/v1/export", {{"format", "csv"}});
  EXPECT_EQ(r.content_type, "text/csv; charset=utf-8");
  EXPECT_EQ(Get("/api/v1/export").status, 400);
  EXPECT_EQ(Get("/api/v1/export", {{"format", "xml"}}).status, 400);
  EXPECT_EQ(Get("/api/v1/export", {{"format", "plain"}, {"x", "1"}}).status,
            400);
}

TEST_F(ApiTest, ExportsListHarvestersWhenAsked) {
  // Trap attribution off: nothing to list.
  EXPECT_EQ(Get("/api/v1/export", {{"format", "plain"}, {"list", "harvesters"}})
                .status,
            503);
  auto traps = ledger::TrapLedger::Open(":memory:", traps::KeyRing(), 3600);
  ASSERT_TRUE(traps.ok()) << traps.error();
  traps_ = traps->get();
  traps::Harvest h;
  h.ip = "203.0.113.50";
  h.time = now_;
  traps_->AddHarvest(h);
  ASSERT_TRUE(traps_->Flush().ok());
  auto r = Get("/api/v1/export", {{"format", "plain"}, {"list", "harvesters"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "203.0.113.50\n");
  r = Get("/api/v1/export", {{"format", "rbldnsd"}, {"list", "harvesters"}});
  EXPECT_THAT(r.body, HasSubstr("203.0.113.50"));
  EXPECT_THAT(r.body, ::testing::Not(HasSubstr("192.0.2.1")));
  r = Get("/api/v1/export", {{"format", "plain"}, {"list", "sources"}});
  EXPECT_EQ(r.body, "192.0.2.1\n198.51.100.2\n");
  EXPECT_EQ(Get("/api/v1/export", {{"format", "plain"}, {"list", "x"}}).status,
            400);
  EXPECT_EQ(Get("/api/v1/export",
                {{"format", "plain"}, {"list", "harvesters"}, {"since", "0"}})
                .status,
            400);
}

// ledger.store = "postgresql": the harvest recorded by another sink's trap
// site, the mail at this one; both endpoints read the shared tables.
TEST_F(ApiTest, HarvestersAndSourceLinksFromPostgres) {
  auto* pg = ledger::testing::PgCluster::Shared();
  if (pg == nullptr) GTEST_SKIP() << "no PostgreSQL server installed";
  ledger::PostgresOptions o;
  o.url = pg->NewDatabase();
  o.password = ledger::testing::PgCluster::kPassword;
  auto keys = traps::KeyRing::Parse({"1:the-fleet-trap-key"}).value();
  auto other = ledger::TrapLedger::OpenPostgres(o, keys, 3600);
  auto here = ledger::TrapLedger::OpenPostgres(o, keys, 3600);
  ASSERT_TRUE(other.ok()) << other.error();
  ASSERT_TRUE(here.ok()) << here.error();
  traps::Harvest h;
  h.ip = "203.0.113.50";
  h.user_agent = "Harvester/3.1";
  h.page = "/people/q/";
  h.time = 1.75e9;  // tokens carry minutes since 2024 (the clock is 2023)
  h.minute = int64_t(h.time / 60);
  h.ref = traps::VisitorRef(keys.current(), h.ip, h.user_agent, h.minute);
  h.addresses = 4;
  (*other)->AddHarvest(h);
  ASSERT_TRUE((*other)->Flush().ok());
  std::string address = traps::MakeAddress(keys.current(), "ann.lee",
                                           "trap.example", h.ref, h.minute);
  (*here)->AddSession("192.0.2.1", h.time + 540, {address});
  ASSERT_TRUE((*here)->Flush().ok());
  traps_ = here->get();

  auto r = Get("/api/v1/harvesters");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = Body(r);
  ASSERT_EQ(j["harvesters"].size(), 1u) << r.body;
  EXPECT_EQ(j["harvesters"][0]["ip"], "203.0.113.50");
  EXPECT_EQ(j["harvesters"][0]["user_agents"][0], "Harvester/3.1");
  EXPECT_EQ(j["harvesters"][0]["addresses"], 4);
  ASSERT_EQ(j["harvesters"][0]["senders"].size(), 1u);
  EXPECT_EQ(j["harvesters"][0]["senders"][0]["ip"], "192.0.2.1");
  EXPECT_NEAR(j["harvesters"][0]["senders"][0]["delay_seconds"].get<double>(),
              540, 1e-6);
  EXPECT_EQ(j["trap_domains"][0]["domain"], "trap.example");
  EXPECT_EQ(j["trap_domains"][0]["linked"], 1);

  r = Get("/api/v1/sources/192.0.2.1");
  ASSERT_EQ(r.status, 200) << r.body;
  j = Body(r);
  ASSERT_EQ(j["harvesters"].size(), 1u) << r.body;
  EXPECT_EQ(j["harvesters"][0]["ip"], "203.0.113.50");
  EXPECT_EQ(j["harvesters"][0]["user_agent"], "Harvester/3.1");
  EXPECT_EQ(j["harvesters"][0]["page"], "/people/q/");
  EXPECT_EQ(j["harvesters"][0]["harvest_time"], 1.75e9);
  EXPECT_EQ(j["harvesters"][0]["harvest_known"], true);
  r = Get("/api/v1/export", {{"format", "plain"}, {"list", "harvesters"}});
  EXPECT_EQ(r.body, "203.0.113.50\n");
}

TEST_F(ApiTest, TokenIsRequiredWhenSet) {
  options_.token = "s3cret";
  auto r = Get("/api/v1/stats");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.headers.at(0).first, "WWW-Authenticate");
  EXPECT_EQ(Get("/api/v1/stats", {}, "Bearer wrong").status, 401);
  EXPECT_EQ(Get("/api/v1/stats", {}, "Bearer s3cre").status, 401);
  EXPECT_EQ(Get("/api/v1/stats", {}, "Basic s3cret").status, 401);
  EXPECT_EQ(Get("/metrics").status, 401);
  EXPECT_EQ(Get("/api/v1/stats", {}, "Bearer s3cret").status, 200);
  EXPECT_EQ(Get("/healthz").status, 200);  // liveness stays open
}

TEST_F(ApiTest, MetricsAreServerAndLedgerFigures) {
  auto r = Get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.content_type, HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(r.body, HasSubstr("spamsink_connections_accepted_total"));
  EXPECT_THAT(r.body, HasSubstr("spamsink_ledger_sessions_recorded_total 4\n"));
  EXPECT_THAT(r.body, HasSubstr("spamsink_session_duration_seconds_count 4\n"));
  // A module above api/ adds its own (the trap site's, serve.cc).
  EXPECT_THAT(r.body, ::testing::Not(HasSubstr("spamsink_trap_slow_clients")));
  more_metrics_ = [] {
    base::Metric m;
    m.name = "trap_slow_clients";
    m.help = "held";
    m.type = base::Metric::Type::kGauge;
    m.value = 3;
    return std::vector<base::Metric>{m};
  };
  r = Get("/metrics");
  EXPECT_THAT(r.body, HasSubstr("# TYPE spamsink_trap_slow_clients gauge\n"
                                "spamsink_trap_slow_clients 3\n"));
}

// promtool from Debian's prometheus package (scripts/setup.sh unpacks it
// into a cache), $PROMTOOL, or the PATH; "" when there is none.
std::string Promtool() {
  for (std::string p :
       {std::string(getenv("PROMTOOL") ? getenv("PROMTOOL") : ""),
        std::string("/var/cache/spamsink-tools/prometheus/"
                    "usr/bin/promtool"),
        std::string("/usr/bin/promtool")}) {
    if (!p.empty() && access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// The names, types, help texts and labels of /metrics as Prometheus's own
// linter reads them (promtool check metrics: exit 0, no complaint).
TEST_F(ApiTest, MetricsPassPromtool) {
  std::string promtool = Promtool();
  if (promtool.empty()) GTEST_SKIP() << "no promtool (scripts/setup.sh)";
  base::Count(base::Counter::kConnectionsRefusedPerIpCap);
  base::Count(base::Counter::kTarpitDelayUs, 1500000);
  auto r = Get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("spamsink_connections_refused_total{reason="
                                "\"per_ip_cap\"} "));
  EXPECT_THAT(r.body, HasSubstr("spamsink_build_info{version=\""));
  std::string path = ::testing::TempDir() + "api_metrics.txt";
  std::ofstream(path) << r.body;
  std::string cmd = promtool + " check metrics < " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  int status = pclose(p);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "");
  std::remove(path.c_str());
}

TEST_F(ApiTest, OnlyGet) {
  Api api(ledger_.get(), options_, &clock_);
  Request r;
  r.method = "POST";
  r.path = "/api/v1/sources";
  auto resp = api.Handle(r);
  EXPECT_EQ(resp.status, 405);
  ASSERT_EQ(resp.headers.size(), 1u);
  EXPECT_EQ(resp.headers[0].first, "Allow");
  EXPECT_EQ(resp.headers[0].second, "GET, HEAD");
  r.method = "HEAD";
  EXPECT_EQ(api.Handle(r).status, 200);
}

TEST(ApiNoLedger, LedgerEndpointsAre503HealthIsOk) {
  base::FakeClock clock;
  Api api(nullptr, {}, &clock);
  Request r;
  r.path = "/api/v1/sources";
  EXPECT_EQ(api.Handle(r).status, 503);
  r.path = "/healthz";
  auto h = api.Handle(r);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(json::parse(h.body)["ledger"], "disabled");
  r.path = "/metrics";
  EXPECT_EQ(api.Handle(r).status, 200);
}

TEST(ApiStoreFailing, QueriesAre503) {
  base::FakeClock clock;
  auto mem = ledger::NewMemoryStore();
  auto fault = std::make_unique<ledger::FaultStore>(mem.get());
  fault->FailReads(true);
  auto l = ledger::Ledger::Create(std::move(fault), {}, &clock, false);
  Api api(l.get(), {}, &clock);
  Request r;
  r.path = "/api/v1/stats";
  auto resp = api.Handle(r);
  EXPECT_EQ(resp.status, 503);
  EXPECT_THAT(resp.body, HasSubstr("injected fault"));
}

// Paused accepting (net/ keeps the gauge) fails the health check, and
// /metrics shows the gauge.
TEST(ApiListenersPaused, HealthIs503WhileAcceptingIsPaused) {
  base::FakeClock clock;
  Api api(nullptr, {}, &clock);
  Request r;
  r.path = "/healthz";
  EXPECT_EQ(api.Handle(r).status, 200);
  base::g_paused_accepts.fetch_add(1);
  auto h = api.Handle(r);
  r.path = "/metrics";
  auto m = api.Handle(r);
  base::g_paused_accepts.fetch_sub(1);
  EXPECT_EQ(h.status, 503);
  EXPECT_THAT(json::parse(h.body)["reasons"][0].get<std::string>(),
              HasSubstr("listeners paused"));
  EXPECT_THAT(m.body, HasSubstr("\nspamsink_paused_accepts 1\n"));
  r.path = "/healthz";
  EXPECT_EQ(api.Handle(r).status, 200);
}

// /healthz used to answer 200 "ok" with ledger "store_failing".
TEST(ApiStoreFailing, HealthIs503WithTheReason) {
  base::FakeClock clock;
  auto mem = ledger::NewMemoryStore();
  auto fault = std::make_unique<ledger::FaultStore>(mem.get());
  auto* f = fault.get();
  auto l = ledger::Ledger::Create(std::move(fault), {}, &clock, false);
  Api api(l.get(), {}, &clock);
  Request r;
  r.path = "/healthz";
  EXPECT_EQ(api.Handle(r).status, 200);
  f->FailWrites(-1);
  peer::SessionSummary s;
  s.client = *base::IpAddress::Parse("192.0.2.1");
  l->Record(s);
  EXPECT_FALSE(l->Flush().ok());
  auto h = api.Handle(r);
  EXPECT_EQ(h.status, 503);
  auto j = json::parse(h.body);
  EXPECT_EQ(j["status"], "failing");
  EXPECT_EQ(j["ledger"], "store_failing");
  EXPECT_THAT(j["reasons"][0].get<std::string>(),
              HasSubstr("ledger store failing"));
  f->FailWrites(0);
  EXPECT_TRUE(l->Flush().ok());
  EXPECT_EQ(api.Handle(r).status, 200);
}

}  // namespace
}  // namespace api
