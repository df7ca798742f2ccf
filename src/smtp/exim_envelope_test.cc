#include "smtp/exim_envelope.h"

#include <gtest/gtest.h>

namespace smtp {
namespace {

TEST(EximEnvelope, TakesOptionsOffTheEnd) {
  std::string_view data = "<a@b.example> SIZE=10 SMTPUTF8";
  EximOption o;
  ASSERT_TRUE(EximTakeOption(&data, &o));
  EXPECT_EQ(o.name, "SMTPUTF8");
  ASSERT_TRUE(EximTakeOption(&data, &o));
  EXPECT_EQ(o.name, "SIZE");
  EXPECT_EQ(o.value, "10");
  EXPECT_EQ(data, "<a@b.example>");
  EXPECT_FALSE(EximTakeOption(&data, &o));
  EXPECT_EQ(data, "<a@b.example>");
  // A quoted local part with a blank is not an option.
  data = "<\"a b\"@c.example>";
  EXPECT_FALSE(EximTakeOption(&data, &o));
}

TEST(EximEnvelope, ParsesAddressesWithEximsTexts) {
  struct Case {
    const char* in;
    bool allow_null;
    const char* error;
    const char* mailbox;
    bool domain;
  } cases[] = {
      {"<a@example.org>", true, "", "a@example.org", true},
      {"a@example.org", true, "", "a@example.org", true},
      {"<@relay.example:a@example.org>", true, "", "a@example.org", true},
      {"<>", true, "", "", false},
      {"<>", false, "missing or malformed local part", "", false},
      {"bogus", true, "", "bogus", false},
      {"<r>", false, "", "r", false},
      {"", false, "empty address", "", false},
      {"<a@example.org", true, "'>' missing at end of address", "", false},
      {"<bad address@example.org>", true,
       "\"@\" or \".\" expected after \"bad\"", "", false},
      {"a b c", false,
       "missing or malformed local part (expected word or \"<\")", "", false},
      {"<r@[127.0.0.1]>", false, "domain literals not allowed", "", false},
      {"<a@example.org> XFOO=1", true,
       "malformed address: XFOO=1 may not follow <a@example.org> ", "", false},
      {"<\"a b\"@example.org>", true, "", "\"a b\"@example.org", true},
  };
  for (const auto& c : cases) {
    EximAddress a = EximParseAddress(c.in, c.allow_null);
    EXPECT_EQ(a.error, c.error) << c.in;
    if (a.error.empty()) {
      EXPECT_EQ(a.mailbox, c.mailbox) << c.in;
      EXPECT_EQ(a.has_domain, c.domain) << c.in;
    }
  }
  std::string local(300, 'a');
  EximAddress a = EximParseAddress("<" + local + "@example.org>", true);
  EXPECT_EQ(a.error,
            "address is ridiculously long: " + local.substr(0, 64) + "...");
}

}  // namespace
}  // namespace smtp
