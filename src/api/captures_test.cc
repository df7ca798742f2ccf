#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "api/handlers.h"
#include "capture/store.h"

namespace api {
namespace {

namespace fs = std::filesystem;

class CapturesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = (fs::temp_directory_path() / "captures_api.XXXXXX");
    dir_ = mkdtemp(t.data());
    capture::Options o;
    o.sample_every = 1;
    o.dir = dir_;
    o.retention_days = 0;
    store_ = std::make_unique<capture::Store>(o, "sink1", &clock_);
    ASSERT_TRUE(store_->Start().ok());
    for (int i = 0; i < 5; ++i) {
      smtp::CapturedMessage m;
      m.client_ip = i < 3 ? "192.0.2.1" : "2001:db8::1";
      m.mail_from = "a@b";
      m.wall = 1.7e9 + i;
      m.raw = "Subject: n" + std::to_string(i) + "\r\n\r\nFrom me\r\n.\r\n";
      store_->Deliver(std::move(m));
    }
    store_->Flush();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Response Get(const std::string& path, ledger::Params params = {},
               bool with_capture = true) {
    Api api(nullptr, ApiOptions{}, &clock_);
    if (with_capture) api.SetCapture(store_.get());
    Request r;
    r.path = path;
    r.params = std::move(params);
    Response out = api.Handle(r);
    if (out.stream) {
      auto s = out.stream([&](std::string_view text) {
        out.body.append(text);
        return true;
      });
      EXPECT_TRUE(s.ok());
    }
    return out;
  }
  base::FakeClock clock_;
  std::string dir_;
  std::unique_ptr<capture::Store> store_;
};

TEST_F(CapturesTest, ListsPagesFetchesAndExportsAnMbox) {
  Response r = Get("/api/v1/captures", {{"limit", "2"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  ASSERT_EQ(j["captures"].size(), 2u);
  EXPECT_EQ(j["total_messages"], 5);
  EXPECT_EQ(j["captures"][0]["source"], "2001:db8::1");
  std::string next = j["next"];
  r = Get("/api/v1/captures", {{"limit", "10"}, {"after", next}});
  j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["captures"].size(), 3u);
  EXPECT_TRUE(j["next"].is_null());

  r = Get("/api/v1/captures", {{"source", "192.0.2.1"}});
  j = nlohmann::json::parse(r.body);
  ASSERT_EQ(j["captures"].size(), 3u);
  std::string id = j["captures"][0]["id"];
  r = Get("/api/v1/captures/" + id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "message/rfc822");
  EXPECT_NE(r.body.find("Subject: n2\r\n"), std::string::npos) << r.body;

  r = Get("/api/v1/captures.mbox", {{"source", "192.0.2.1"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/mbox");
  size_t froms = 0;
  for (size_t p = 0;
       (p = r.body.find("From MAILER-DAEMON", p)) != std::string::npos; ++p) {
    ++froms;
  }
  EXPECT_EQ(froms, 3u);
  EXPECT_NE(r.body.find("\n>From me\n"), std::string::npos);
}

// Filters: a network, a time range (Unix seconds or RFC 3339), the sink;
// the mbox takes the same selection.
TEST_F(CapturesTest, FiltersByNetworkTimeAndSink) {
  auto sources = [&](ledger::Params p) {
    Response r = Get("/api/v1/captures", std::move(p));
    EXPECT_EQ(r.status, 200) << r.body;
    std::string out;
    auto j = nlohmann::json::parse(r.body);  // outlives the loop
    for (const auto& c : j["captures"]) {
      out += std::string(c["source"]) + "@" + std::string(c["time"]) + " ";
    }
    return out;
  };
  EXPECT_EQ(
      sources({{"source", "2001:db8::/32"}}),
      "2001:db8::1@2023-11-14T22:13:24Z 2001:db8::1@2023-11-14T22:13:23Z ");
  EXPECT_EQ(sources({{"source", "192.0.2.0/30"}, {"since", "1700000001"}}),
            "192.0.2.1@2023-11-14T22:13:22Z 192.0.2.1@2023-11-14T22:13:21Z ");
  EXPECT_EQ(sources({{"since", "2023-11-14T22:13:22Z"},
                     {"until", "2023-11-14T22:13:23Z"}}),
            "192.0.2.1@2023-11-14T22:13:22Z ");
  EXPECT_EQ(sources({{"sink", "sink2"}}), "");
  EXPECT_EQ(nlohmann::json::parse(
                Get("/api/v1/captures", {{"sink", "sink1"}}).body)["captures"]
                .size(),
            5u);
  Response r = Get("/api/v1/captures.mbox", {{"source", "2001:db8::/32"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find("Subject: n0"), std::string::npos);
  EXPECT_NE(r.body.find("Subject: n4"), std::string::npos);
}

TEST_F(CapturesTest, RefusesBadInputAndAnswers503WhenOff) {
  EXPECT_EQ(Get("/api/v1/captures/..%2Fetc").status, 404);
  EXPECT_EQ(Get("/api/v1/captures/../../etc/passwd").status, 404);
  EXPECT_EQ(Get("/api/v1/captures", {{"limit", "0"}}).status, 400);
  EXPECT_EQ(Get("/api/v1/captures", {{"source", "x"}}).status, 400);
  EXPECT_EQ(Get("/api/v1/captures", {{"bogus", "1"}}).status, 400);
  EXPECT_EQ(Get("/api/v1/captures", {{"source", "192.0.2.0/33"}}).status, 400);
  EXPECT_EQ(Get("/api/v1/captures", {{"since", "yesterday"}}).status, 400);
  EXPECT_EQ(Get("/api/v1/captures", {{"sink", ""}}).status, 400);
  EXPECT_EQ(Get("/api/v1/captures", {}, false).status, 503);
}

}  // namespace
}  // namespace api
