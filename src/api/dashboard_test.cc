// The console's pages as strings: escaping, filters, paging, login.
#include "api/dashboard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/dashboard_html.h"
#include "base/tarpit_cost.h"
#include "ledger/test_util.h"

namespace api {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Header(const Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger_ =
        ledger::Ledger::Create(ledger::NewMemoryStore(), {}, &clock_, false);
    double now = clock_.WallSeconds();
    for (int i = 1; i <= 30; ++i) {
      auto s = ledger::testing::Session("192.0.2." + std::to_string(i),
                                        uint32_t(i), 1000 * i, now - i);
      peer::AddName(&s.helo_names, "host" + std::to_string(i) + ".example");
      ledger_->Record(s);
    }
    auto bad = ledger::testing::Session("198.51.100.7", 1, 10, now - 5);
    peer::AddName(&bad.helo_names, "<script>alert(1)</script>");
    peer::AddName(&bad.mail_from_domains, "\"q\"<x>'.example");
    ledger_->Record(bad);
    ASSERT_TRUE(ledger_->Flush().ok());
  }

  Response Do(const std::string& method, const std::string& path,
              ledger::Params params = {}, const std::string& cookie = "",
              const std::string& body = "") {
    if (!api_) api_ = std::make_unique<Api>(ledger_.get(), options_, &clock_);
    Request r;
    r.method = method;
    r.path = path;
    r.params = std::move(params);
    r.cookie = cookie;
    r.body = body;
    r.host = "127.0.0.1:8025";
    return api_->Handle(r);
  }
  Response Get(const std::string& path, ledger::Params params = {},
               const std::string& cookie = "") {
    return Do("GET", path, std::move(params), cookie);
  }

  base::FakeClock clock_;
  std::unique_ptr<ledger::Ledger> ledger_;
  ApiOptions options_;
  std::unique_ptr<Api> api_;
};

TEST(Html, EscapeAndUrl) {
  EXPECT_EQ(html::Escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(html::UrlEncode("192.0.2.0/24 x"), "192.0.2.0%2F24%20x");
  EXPECT_EQ(html::UrlDecode("a+b%2Fc%zz%4"), "a b/c%zz%4");
  auto form = html::ParseForm("csrf=ab&token=s%3Dcret&&x");
  EXPECT_EQ(form.find("token")->second, "s=cret");
  EXPECT_EQ(form.find("x")->second, "");
  EXPECT_EQ(html::Count(1234567), "1,234,567");
  EXPECT_EQ(html::Bytes(1500), "1.5 kB");
}

TEST_F(DashboardTest, OverviewHasTotalsAndAStrictCsp) {
  auto r = Get("/");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_THAT(r.body, HasSubstr("<td data-key=\"sources\">31</td>"));
  EXPECT_THAT(r.body, HasSubstr("id=\"chart-minute\""));
  std::string csp = Header(r, "Content-Security-Policy");
  EXPECT_THAT(csp, HasSubstr("script-src 'self'"));
  EXPECT_THAT(csp, Not(HasSubstr("unsafe")));
  // No inline script or style: everything comes from /assets/.
  EXPECT_THAT(r.body, Not(HasSubstr("<script>")));
  EXPECT_THAT(r.body, Not(HasSubstr("style=")));
  EXPECT_THAT(r.body, HasSubstr("/assets/dygraph.min.js"));
  EXPECT_THAT(Get("/sources").body, Not(HasSubstr("dygraph")));
  auto j = Get("/overview.json");
  ASSERT_EQ(j.status, 200);
  EXPECT_THAT(j.body, HasSubstr("\"sources\":31"));
  EXPECT_THAT(j.body, HasSubstr("\"per_minute\":[["));
}

TEST_F(DashboardTest, HostileNamesAreEscapedEverywhere) {
  for (const auto& path :
       {std::string("/sources"), std::string("/source/198.51.100.7")}) {
    auto r = Get(path, {{"cidr", "198.51.100.0/24"}});
    ASSERT_EQ(r.status, 200) << path << r.body;
    EXPECT_THAT(r.body, Not(HasSubstr("<script>alert")));
    // peer/ already replaced ( ) / with '?'; < and > reach the page.
    EXPECT_THAT(r.body, HasSubstr("&lt;script&gt;alert?1?&lt;?script&gt;"));
  }
  auto r = Get("/source/198.51.100.7");
  EXPECT_THAT(r.body, HasSubstr("?q?&lt;x&gt;?.example"));
  // Export lines of the source, ready to copy.
  EXPECT_THAT(r.body, HasSubstr("198.51.100.7/32 REJECT"));
}

TEST_F(DashboardTest, SourcesPageSortAndFilter) {
  auto r = Get("/sources");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("<span data-key=\"total\">31</span>"));
  EXPECT_THAT(r.body, HasSubstr("page 1 of 2"));
  // Default: most messages first.
  EXPECT_LT(r.body.find(">192.0.2.30<"), r.body.find(">192.0.2.29<"));
  EXPECT_THAT(r.body, HasSubstr("rel=\"next\""));
  auto p2 = Get("/sources", {{"page", "2"}});
  EXPECT_THAT(p2.body, HasSubstr("page 2 of 2"));
  EXPECT_THAT(p2.body, HasSubstr(">192.0.2.1<"));
  auto by_ip = Get("/sources", {{"sort", "ip"}, {"order", "asc"}});
  EXPECT_LT(by_ip.body.find(">192.0.2.1<"), by_ip.body.find(">192.0.2.2<"));
  EXPECT_THAT(by_ip.body, HasSubstr("aria-sort=\"ascending\""));
  auto cidr = Get("/sources", {{"cidr", "192.0.2.0/29"}, {"min_messages", ""}});
  EXPECT_THAT(cidr.body, HasSubstr("<span data-key=\"total\">7</span>"));
  // The fleet's sink filter (sink=, as /api/v1/sources): a local store
  // knows only its own sink, so another sink's list is empty.
  auto other = Get("/sources", {{"sink", "sink-<b>"}});
  ASSERT_EQ(other.status, 200);
  EXPECT_THAT(other.body, HasSubstr("<span data-key=\"total\">0</span>"));
  EXPECT_THAT(other.body, HasSubstr("name=\"sink\""));
  EXPECT_THAT(other.body, HasSubstr("value=\"sink-&lt;b&gt;\""));
  auto bad = Get("/sources", {{"cidr", "nonsense"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("class=\"error\""));
}

TEST_F(DashboardTest, SourcePageAndErrors) {
  auto r = Get("/source/192.0.2.4");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("host4.example"));
  EXPECT_EQ(Get("/source/192.0.2.200").status, 404);
  EXPECT_EQ(Get("/source/nonsense").status, 400);
}

TEST_F(DashboardTest, AssetsAreEmbedded) {
  auto js = Get("/assets/app.js");
  ASSERT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_THAT(js.body, HasSubstr("textContent"));
  auto chart = Get("/assets/dygraph.min.js");
  ASSERT_EQ(chart.status, 200);
  EXPECT_GT(chart.body.size(), 50000u);
  EXPECT_EQ(Get("/assets/style.css").content_type, "text/css; charset=utf-8");
  EXPECT_THAT(Get("/assets/LICENSES.txt").body, HasSubstr("MIT"));
  EXPECT_EQ(Get("/assets/nope.js").status, 404);
  EXPECT_EQ(Get("/assets/../handlers.cc").status, 404);
}

TEST_F(DashboardTest, NoStateChangeByGetAndNoOtherMethods) {
  EXPECT_EQ(Do("POST", "/").status, 405);
  EXPECT_EQ(Do("DELETE", "/sources").status, 405);
  EXPECT_EQ(Get("/logout").status, 405);
}

TEST_F(DashboardTest, LoginSetsAStrictHttpOnlyCookie) {
  options_.token = "s3cret";
  auto r = Get("/");
  EXPECT_EQ(r.status, 401);
  EXPECT_THAT(r.body, HasSubstr("action=\"/login\""));
  EXPECT_EQ(Get("/sources").status, 401);
  EXPECT_EQ(Get("/api/v1/stats").status, 401);
  // The CSRF token: in a cookie and in the form.
  std::string set = Header(r, "Set-Cookie");
  ASSERT_EQ(set.rfind("spamsink_csrf=", 0), 0u) << set;
  std::string csrf = set.substr(14, 32);
  EXPECT_THAT(r.body, HasSubstr("value=\"" + csrf + "\""));
  std::string csrf_cookie = "spamsink_csrf=" + csrf;
  // No cookie, or a field that does not match it: refused.
  EXPECT_EQ(
      Do("POST", "/login", {}, "", "csrf=" + csrf + "&token=s3cret").status,
      403);
  EXPECT_EQ(Do("POST", "/login", {}, csrf_cookie, "csrf=x&token=s3cret").status,
            403);
  EXPECT_EQ(
      Do("POST", "/login", {}, csrf_cookie, "csrf=" + csrf + "&token=wrong")
          .status,
      401);
  auto ok =
      Do("POST", "/login", {}, csrf_cookie, "csrf=" + csrf + "&token=s3cret");
  ASSERT_EQ(ok.status, 303);
  EXPECT_EQ(Header(ok, "Location"), "/");
  std::string session = Header(ok, "Set-Cookie");
  EXPECT_THAT(session, HasSubstr("HttpOnly"));
  EXPECT_THAT(session, HasSubstr("SameSite=Strict"));
  std::string id = session.substr(0, session.find(';'));
  std::string cookies = csrf_cookie + "; " + id;
  auto page = Get("/", {}, cookies);
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("action=\"/logout\""));
  EXPECT_EQ(Get("/api/v1/stats", {}, cookies).status, 200);
  EXPECT_EQ(Get("/", {}, csrf_cookie + "; spamsink_session=forged").status,
            401);
  // Logout needs the CSRF token too, then the cookie is worthless.
  EXPECT_EQ(Do("POST", "/logout", {}, id, "csrf=" + csrf).status, 403);
  EXPECT_EQ(Do("POST", "/logout", {}, cookies, "csrf=" + csrf).status, 303);
  EXPECT_EQ(Get("/", {}, cookies).status, 401);
}

TEST_F(DashboardTest, BearerTokenStillWorks) {
  options_.token = "s3cret";
  api_ = std::make_unique<Api>(ledger_.get(), options_, &clock_);
  Request r;
  r.path = "/sources";
  r.authorization = "Bearer s3cret";
  EXPECT_EQ(api_->Handle(r).status, 200);
  r.authorization = "Bearer wrong";
  EXPECT_EQ(api_->Handle(r).status, 401);
}

TEST_F(DashboardTest, RateSeriesFillsTheLastBucket) {
  auto w = ledger_->RateSeries(60, 60);
  ASSERT_EQ(w.size(), 60u);
  uint64_t total = 0;
  for (const auto& x : w) total += x.connections;
  EXPECT_EQ(total, 31u);
  EXPECT_EQ(w.back().connections, 31u);  // all flushed in this minute
}

TEST_F(DashboardTest, OverviewChartsTheDayByHour) {
  auto r = Get("/overview.json");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  ASSERT_EQ(j["per_hour"].size(), size_t(ledger::kHourlyBuckets));
  const auto& last = j["per_hour"].back();
  // 30 senders of 1..30 messages and one of 1: all new, this hour.
  EXPECT_EQ(last[1], 31);
  EXPECT_EQ(last[2], 30 * 31 / 2 + 1);
  EXPECT_EQ(last[3], 31);
  double start = last[0].get<double>();
  EXPECT_LE(start, clock_.WallSeconds());
  EXPECT_GT(start + 3600, clock_.WallSeconds());
  EXPECT_EQ(j["per_hour"][0][1], 0);

  auto page = Get("/");
  EXPECT_THAT(page.body, HasSubstr("id=\"chart-hour\""));
  EXPECT_THAT(page.body, HasSubstr("<td>31</td><td>466</td><td>31</td>"));
  // Two hours on, the sessions sit in the third hour from the end.
  clock_.Advance(std::chrono::hours(2));
  j = nlohmann::json::parse(Get("/overview.json").body);
  EXPECT_EQ(j["per_hour"][21][3], 31);
  EXPECT_EQ(j["per_hour"][23][3], 0);
}

// A time the trap tokens can hold (their minutes count from 2024).
constexpr double kHarvestTime = 1.75e9;

// A trap ledger with one harvester (hostile user agent) whose address
// 198.51.100.7 (a source of the fixture) mailed an hour later.
std::unique_ptr<ledger::TrapLedger> Traps(double harvest_time) {
  auto keys = traps::KeyRing::Parse({"1:the-site-secret-key"}).value();
  auto t = ledger::TrapLedger::Open(":memory:", keys, 3600).value();
  traps::Harvest h;
  h.minute = int64_t(harvest_time / 60);
  h.ip = "203.0.113.9";
  h.user_agent = "<img src=x onerror=alert(1)>";
  h.ref = traps::VisitorRef(keys.current(), h.ip, h.user_agent, h.minute);
  h.page = "/people/x/";
  h.time = harvest_time;
  h.addresses = 6;
  t->AddHarvest(h);
  std::string address = traps::MakeAddress(keys.current(), "ann.lee",
                                           "trap.example", h.ref, h.minute);
  t->AddSession("198.51.100.7", harvest_time + 3600, {address});
  EXPECT_TRUE(t->Flush().ok());
  return t;
}

TEST_F(DashboardTest, HarvestersPageListsWhoTookAndWhoSent) {
  EXPECT_THAT(Get("/harvesters").body, HasSubstr("id=\"traps-off\""));
  double when = kHarvestTime;
  auto traps = Traps(when);
  api_ = std::make_unique<Api>(ledger_.get(), options_, &clock_);
  api_->SetTraps(traps.get());
  auto r = Get("/harvesters");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("<a href=\"/source/203.0.113.9\">"));
  EXPECT_THAT(r.body, HasSubstr("<a href=\"/source/198.51.100.7\">"));
  EXPECT_THAT(r.body, HasSubstr(html::Escape(ledger::FormatTime(when))));
  EXPECT_THAT(r.body, HasSubstr("after 60.0 min"));
  EXPECT_THAT(r.body, HasSubstr("&lt;img src=x onerror=alert(1)&gt;"));
  EXPECT_THAT(r.body, Not(HasSubstr("<img")));
  EXPECT_THAT(r.body, HasSubstr("<td>trap.example</td><td>1</td><td>1</td>"));
  EXPECT_THAT(r.body, HasSubstr("aria-current=\"page\">Harvesters"));
}

TEST_F(DashboardTest, ExportsOfferTheHarvesterList) {
  auto r = Get("/exports");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("<input type=\"hidden\" name=\"list\" "
                                "value=\"harvesters\">"));
  EXPECT_THAT(r.body, HasSubstr("href=\"/api/v1/export?list=harvesters&amp;"
                                "format=plain\""));
}

TEST_F(DashboardTest, ServerPageShowsTheLatestServerInfo) {
  options_.server_info = {{"Persona", "postfix"},
                          {"config", "[smtp]\npersona = \"postfix\"\n"}};
  auto r = Get("/server");
  EXPECT_THAT(r.body, HasSubstr("persona = &quot;postfix&quot;"));
  EXPECT_THAT(r.body, HasSubstr("none (loopback only)"));
  api_->SetServerInfo({{"Persona", "exim<4>"},
                       {"Last reload", "at 2026-11-27T19:00:00Z"},
                       {"config", "[smtp]\npersona = \"exim\"\n"}});
  api_->SetToken("s3cret");
  Request req;
  req.path = "/server";
  req.host = "127.0.0.1:8025";
  req.authorization = "Bearer s3cret";
  r = api_->Handle(req);
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("persona = &quot;exim&quot;"));
  EXPECT_THAT(r.body, Not(HasSubstr("postfix")));
  EXPECT_THAT(r.body, HasSubstr("exim&lt;4&gt;"));
  EXPECT_THAT(r.body, HasSubstr("Last reload"));
  EXPECT_THAT(r.body, HasSubstr("<td data-key=\"auth\">token</td>"));
}

TEST_F(DashboardTest, SourcePageHasATimeline) {
  auto r = Get("/source/192.0.2.3");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("id=\"timeline\""));
  EXPECT_THAT(r.body, HasSubstr("1 day: 1 session, 1.0 a day, 3.0 messages"));
  // With the trap attribution: the harvest of the addresses it mailed, and
  // its mail to them, in time order with the sessions.
  auto traps = Traps(kHarvestTime);
  api_->SetTraps(traps.get());
  r = Get("/source/198.51.100.7");
  ASSERT_EQ(r.status, 200) << r.body;
  size_t harvest =
      r.body.find("were harvested by <a href=\"/source/203.0.113.9");
  size_t spam = r.body.find("first mail to the addresses harvested by");
  size_t first = r.body.find("<td>first session</td>");
  size_t last = r.body.find("<td>last session</td>");
  ASSERT_NE(harvest, std::string::npos) << r.body;
  ASSERT_NE(spam, std::string::npos);
  ASSERT_NE(first, std::string::npos);
  // The fixture's sessions come first (the fake clock is before the
  // harvest); the order is by time.
  EXPECT_LT(first, last);
  EXPECT_LT(last, harvest);
  EXPECT_LT(harvest, spam);
  EXPECT_THAT(r.body, HasSubstr("60.0 min after the harvest"));
  EXPECT_THAT(r.body, HasSubstr("&lt;img src=x onerror=alert(1)&gt;"));
  EXPECT_THAT(r.body, Not(HasSubstr("<img")));
}

// The source's sessions per hour from the stored hourly rows: a chart
// series with every hour (gaps as zeros), a table, the chart library, and
// the same counts in /api/v1/sources/{ip}.
TEST_F(DashboardTest, SourcePageChartsItsSessionsPerHour) {
  double now = clock_.WallSeconds();
  ledger_->Record(ledger::testing::Session("192.0.2.3", 2, 10, now - 2 * 3600));
  ASSERT_TRUE(ledger_->Flush().ok());
  auto r = Get("/source/192.0.2.3");
  ASSERT_EQ(r.status, 200) << r.body;
  int64_t h = ledger::HourOf(now);
  std::string series = "[[" + std::to_string(h - 7200) + ",1,2],[" +
                       std::to_string(h - 3600) + ",0,0],[" +
                       std::to_string(h) + ",1,3]]";
  EXPECT_THAT(r.body, HasSubstr("data-series=\"" + series + "\""));
  EXPECT_THAT(r.body, HasSubstr("id=\"source-hours\""));
  EXPECT_THAT(r.body, HasSubstr("/assets/dygraph.min.js"));
  auto j = nlohmann::json::parse(Get("/api/v1/sources/192.0.2.3").body);
  ASSERT_EQ(j["per_hour"].size(), 2u) << j.dump();
  EXPECT_EQ(j["per_hour"][0]["sessions"], 1);
  EXPECT_EQ(j["per_hour"][0]["messages"], 2);
  EXPECT_EQ(j["per_hour"][1]["messages"], 3);
}

// Retransmissions to held senders (net/tcp_retrans.h adds them at each
// held session's close) on the Overview, in /overview.json, /api/v1/cost
// and /metrics.
TEST_F(DashboardTest, OverviewShowsTarpitRetransmissions) {
  uint64_t n = base::g_tarpit_retransmissions.fetch_add(1234567) + 1234567;
  auto r = Get("/");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("<td data-key=\"tarpit_retransmissions\">" +
                                html::Count(n) + "</td>"));
  auto j = nlohmann::json::parse(Get("/overview.json").body);
  EXPECT_EQ(j["tarpit_retransmissions"].get<uint64_t>(), n);
  j = nlohmann::json::parse(Get("/api/v1/cost").body);
  EXPECT_EQ(j["tarpit"]["retransmissions"].get<uint64_t>(), n);
  EXPECT_THAT(Get("/metrics").body,
              HasSubstr("spamsink_tarpit_retransmissions_total " +
                        std::to_string(n) + "\n"));
}

}  // namespace
}  // namespace api
