#include "base/endpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace base {
namespace {

using ::testing::HasSubstr;

TEST(Endpoint, ParsesAddressesAndPorts) {
  struct Case {
    const char* text;
    const char* address;
    uint16_t port;
  };
  const Case cases[] = {
      {"1.2.3.4:25", "1.2.3.4", 25},
      {"0.0.0.0:2525", "0.0.0.0", 2525},
      {"[::1]:25", "::1", 25},
      {"[::]:25", "::", 25},
      {"[2001:DB8::1]:587", "2001:db8::1", 587},
      {"127.0.0.1:0", "127.0.0.1", 0},
      {"127.0.0.1:65535", "127.0.0.1", 65535},
      {"127.0.0.1:00025", "127.0.0.1", 25},
      {"localhost:8025", "127.0.0.1", 8025},
  };
  for (const Case& c : cases) {
    auto e = Endpoint::Parse(c.text);
    ASSERT_TRUE(e.ok()) << c.text << ": " << e.error();
    EXPECT_EQ(e->address.ToString(), c.address) << c.text;
    EXPECT_EQ(e->port, c.port) << c.text;
  }
}

// Service names come from a built-in table first: the appliance has no
// /etc/services.
TEST(Endpoint, ServiceNames) {
  EXPECT_EQ(Endpoint::Parse("127.0.0.1:smtp")->port, 25);
  EXPECT_EQ(Endpoint::Parse("[::1]:submission")->port, 587);
  EXPECT_EQ(Endpoint::Parse("0.0.0.0:submissions")->port, 465);
  EXPECT_EQ(Endpoint::Parse("0.0.0.0:smtps")->port, 465);
  EXPECT_EQ(Endpoint::Parse("127.0.0.1:http")->port, 80);
}

TEST(Endpoint, RejectsWithReasonAndExample) {
  struct Case {
    const char* text;
    const char* reason;
  };
  const Case cases[] = {
      {"127.0.0.1:65561", "port 65561 is out of range (0 to 65535)"},
      {"127.0.0.1:97000", "port 97000 is out of range"},
      {"127.0.0.1:99999999999999999999999", "out of range"},
      {"127.0.0.1:abc", "\"abc\" is neither a number nor a known service"},
      {"127.0.0.1:-1", "neither a number nor a known service"},
      {"127.0.0.1:2 5", "neither a number nor a known service"},
      {"127.0.0.1:", "missing port"},
      {"127.0.0.1", "missing \":port\""},
      {"", "missing \":port\""},
      {":25", "missing address"},
      {"[]:25", "missing address"},
      {"mail.example.com:25", "is not an IP address"},
      {"example:smtp", "is not an IP address"},
      {"1.2.3:25", "is not an IP address"},
      {"::1:25", "needs brackets"},
      {"[::1:25", "missing \"]\""},
      {"[::1]25", "missing \":port\" after \"]\""},
      {"[::1]", "missing \":port\" after \"]\""},
  };
  for (const Case& c : cases) {
    auto e = Endpoint::Parse(c.text);
    ASSERT_FALSE(e.ok()) << c.text;
    EXPECT_THAT(e.error(), HasSubstr(c.reason)) << c.text;
    // The value is quoted and an example follows.
    EXPECT_THAT(e.error(), HasSubstr("\"" + std::string(c.text) + "\""));
    EXPECT_THAT(e.error(), HasSubstr("e.g. ")) << e.error();
  }
}

TEST(Endpoint, ToStringRoundTrips) {
  for (const char* text :
       {"127.0.0.1:25", "[::1]:25", "[2001:db8::1]:2525", "0.0.0.0:0"}) {
    auto e = Endpoint::Parse(text);
    ASSERT_TRUE(e.ok()) << text;
    EXPECT_EQ(e->ToString(), text);
    EXPECT_EQ(*Endpoint::Parse(e->ToString()), *e);
  }
  EXPECT_EQ(Endpoint::Parse("localhost:smtp")->ToString(), "127.0.0.1:25");
}

}  // namespace
}  // namespace base
