// The DNS-rebinding guard: without a token only a loopback Host is served.
#include <gtest/gtest.h>

#include "api/handlers.h"
#include "ledger/test_util.h"

namespace api {
namespace {

TEST(IsLoopbackHost, NamesAndAddresses) {
  for (const char* ok :
       {"", "localhost", "LOCALHOST:8025", "localhost.", "a.localhost",
        "127.0.0.1", "127.0.0.1:8025", "127.9.8.7:1", "[::1]", "[::1]:8025"}) {
    EXPECT_TRUE(IsLoopbackHost(ok)) << ok;
  }
  for (const char* bad :
       {"evil.example", "evil.example:8025", "localhost.evil.example",
        "notlocalhost", "192.0.2.1", "192.0.2.1:8025", "[2001:db8::1]:80",
        "[::1", "[::1]x", "127.0.0.1.evil.example", "0.0.0.0:8025"}) {
    EXPECT_FALSE(IsLoopbackHost(bad)) << bad;
  }
}

TEST(HostCheck, WithoutTokenOnlyLoopbackHostIsServed) {
  base::FakeClock clock;
  auto l = ledger::Ledger::Create(ledger::NewMemoryStore(), {}, &clock, false);
  Api api(l.get(), {}, &clock);
  for (const char* path : {"/healthz", "/api/v1/stats", "/metrics", "/"}) {
    Request r;
    r.path = path;
    r.host = "evil.example:8025";
    EXPECT_EQ(api.Handle(r).status, 403) << path;
    r.host = "127.0.0.1:8025";
    EXPECT_NE(api.Handle(r).status, 403) << path;
  }
}

TEST(HostCheck, WithTokenAnyHostMayAsk) {
  base::FakeClock clock;
  auto l = ledger::Ledger::Create(ledger::NewMemoryStore(), {}, &clock, false);
  ApiOptions o;
  o.token = "s3cret";
  Api api(l.get(), o, &clock);
  Request r;
  r.path = "/api/v1/stats";
  r.host = "sink.example:8025";
  r.authorization = "Bearer s3cret";
  EXPECT_EQ(api.Handle(r).status, 200);
  r.authorization = "Bearer wrong";
  EXPECT_EQ(api.Handle(r).status, 401);
}

}  // namespace
}  // namespace api
