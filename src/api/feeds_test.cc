// The MISP feed and the STIX bundle fetched over HTTP from the API server
// on loopback, as a MISP instance's feed fetcher or a TAXII-less STIX
// consumer would, and validated with the export tests' checks
// (ledger/feed_checks.h).
#include <gtest/gtest.h>
#include <httplib.h>

#include <set>

#include "api/http_server.h"
#include "base/clock.h"
#include "ledger/feed_checks.h"
#include "ledger/test_util.h"

namespace api {
namespace {

class FeedsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The API dates the feed by the real clock; the sources are of the
    // last three days.
    now_ = base::SystemClock::Get().WallSeconds();
    ledger_ =
        ledger::Ledger::Create(ledger::NewMemoryStore(), {}, &clock_, false);
    const char* ips[] = {"192.0.2.1", "192.0.2.2", "198.51.100.7",
                         "2001:db8::5", "203.0.113.9"};
    for (int i = 0; i < 5; ++i) {
      ledger_->Record(
          ledger::testing::Session(ips[i], 1 + i, 100, now_ - i * 40000.0));
      expected_.insert(i == 3 ? "2001:db8::/64" : ips[i]);  // ledger /64
    }
    ASSERT_TRUE(ledger_->Flush().ok());
    Options c;
    c.listen = "127.0.0.1:0";
    c.token = "tok";
    server_ = std::make_unique<HttpServer>(c, ledger_.get());
    ASSERT_TRUE(server_->Start().ok());
    cli_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    cli_->set_connection_timeout(5, 0);
    cli_->set_read_timeout(10, 0);
  }
  void TearDown() override { server_->Stop(); }
  // The body of an authenticated GET; expects 200, streamed.
  std::string Fetch(const std::string& path) {
    auto r = cli_->Get(path, {{"Authorization", "Bearer tok"}});
    EXPECT_TRUE(r) << path;
    if (!r) return "";
    EXPECT_EQ(r->status, 200) << path << " " << r->body;
    EXPECT_EQ(r->get_header_value("Transfer-Encoding"), "chunked") << path;
    return r->body;
  }
  int Status(const std::string& path, bool auth = true) {
    auto r = auth ? cli_->Get(path, {{"Authorization", "Bearer tok"}})
                  : cli_->Get(path);
    return r ? r->status : -1;
  }
  base::FakeClock clock_;
  double now_ = 0;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> cli_;
  std::set<std::string> expected_;
};

TEST_F(FeedsTest, MispFeedOverHttp) {
  auto seen = ledger::testing::CheckMispFeed(
      [&](const std::string& name) {
        return Fetch("/api/v1/feeds/misp/" + name);
      },
      -1);  // the manifest's timestamp: the request's second, below
  std::set<std::string> values;
  for (const auto& [v, ev] : seen.value_event) values.insert(v);
  EXPECT_EQ(values, expected_);
  EXPECT_EQ(seen.hash_rows, expected_.size());
  EXPECT_GE(seen.dates.size(), 2u);
  for (const auto& [id, head] : seen.manifest.items()) {
    int64_t t = std::stoll(head["timestamp"].get<std::string>());
    EXPECT_GE(t, int64_t(now_));
    EXPECT_LT(t, int64_t(now_) + 300);
  }
  auto r = cli_->Get("/api/v1/feeds/misp/manifest.json",
                     {{"Authorization", "Bearer tok"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
}

TEST_F(FeedsTest, MispFeedRefusals) {
  EXPECT_EQ(Status("/api/v1/feeds/misp/manifest.json", false), 401);
  EXPECT_EQ(Status("/api/v1/feeds/misp/hashes.csv", false), 401);
  EXPECT_EQ(Status("/api/v1/feeds/misp/00000000-0000-4000-8000-000000000000"
                   ".json"),
            404);
  EXPECT_EQ(Status("/api/v1/feeds/misp/../../etc/passwd"), 404);
  EXPECT_EQ(Status("/api/v1/feeds/misp/manifest.json?sink=a"), 400);
  EXPECT_EQ(Status("/api/v1/feeds/misp/manifest.json?bogus=1"), 400);
}

TEST_F(FeedsTest, StixBundleOverHttp) {
  auto addresses =
      ledger::testing::CheckStixBundle(Fetch("/api/v1/export?format=stix"));
  // STIX names an IPv6 record of the /64-keyed ledger by its network.
  EXPECT_EQ(std::set<std::string>(addresses.begin(), addresses.end()),
            expected_);
}

}  // namespace
}  // namespace api
