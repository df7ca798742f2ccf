#include "api/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "ledger/test_util.h"

namespace api {
namespace {

// api.listen is read by base::Endpoint; a bad value is an error naming the
// setting and the value, never an exception (std::stoi used to throw).
TEST(HttpServer, BadListenIsAnErrorNamingTheSetting) {
  for (const char* bad : {"127.0.0.1", "::1:80", "127.0.0.1:99999", ":80",
                          "127.0.0.1:abc", "127.0.0.1:99999999999999999999"}) {
    Options c;
    c.listen = bad;
    HttpServer s(c, nullptr);
    auto st = s.Start();
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.message().rfind("api.listen: \"" + std::string(bad) + "\"", 0),
              0u)
        << st.message();
  }
}

TEST(HttpServer, RefusesPublicAddressWithoutToken) {
  Options c;
  c.listen = "0.0.0.0:0";
  HttpServer s(c, nullptr);
  auto st = s.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("token"), std::string::npos) << st.message();
  c.listen = "[::]:0";
  HttpServer s6(c, nullptr);
  EXPECT_FALSE(s6.Start().ok());
  c.listen = "example.com:80";
  HttpServer s7(c, nullptr);
  EXPECT_FALSE(s7.Start().ok());
}

TEST(HttpServer, ServesOverLoopback) {
  base::FakeClock clock;
  auto l = ledger::Ledger::Create(ledger::NewMemoryStore(), {}, &clock, false);
  l->Record(ledger::testing::Session("192.0.2.44", 3, 300));
  ASSERT_TRUE(l->Flush().ok());
  Options c;
  c.listen = "127.0.0.1:0";
  c.token = "tok";
  HttpServer s(c, l.get());
  ASSERT_TRUE(s.Start().ok());
  ASSERT_GT(s.port(), 0);
  httplib::Client cli("127.0.0.1", s.port());
  cli.set_connection_timeout(5, 0);
  auto r = cli.Get("/healthz");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  r = cli.Get("/api/v1/sources/192.0.2.44");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  httplib::Headers auth = {{"Authorization", "Bearer tok"}};
  r = cli.Get("/api/v1/sources/192.0.2.44", auth);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(nlohmann::json::parse(r->body)["messages"], 3);
  r = cli.Get("/api/v1/sources?cidr=192.0.2.0%2F24&sort=bytes", auth);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(nlohmann::json::parse(r->body)["total"], 1);
  r = cli.Get("/api/v1/export?format=plain", auth);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "192.0.2.44\n");
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; charset=utf-8");
  // Streamed, never held whole in memory (the security review saw one
  // export raise the peak by 160 MB).
  EXPECT_EQ(r->get_header_value("Transfer-Encoding"), "chunked");
  r = cli.Post("/api/v1/sources", auth, "", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  s.Stop();
  EXPECT_FALSE(cli.Get("/healthz"));
}

TEST(HttpServer, BusyPortIsAnError) {
  Options c;
  c.listen = "127.0.0.1:0";
  HttpServer a(c, nullptr);
  ASSERT_TRUE(a.Start().ok());
  c.listen = "127.0.0.1:" + std::to_string(a.port());
  HttpServer b(c, nullptr);
  EXPECT_FALSE(b.Start().ok());
}

}  // namespace
}  // namespace api
