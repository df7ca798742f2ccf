#include "smtp/command.h"

#include <gtest/gtest.h>

namespace smtp {
namespace {

TEST(Command, Split) {
  std::string_view verb, arg;
  SplitCommand("MAIL FROM:<a@b>  SIZE=10 ", &verb, &arg);
  EXPECT_EQ(verb, "MAIL");
  EXPECT_EQ(arg, "FROM:<a@b>  SIZE=10");
  SplitCommand("QUIT", &verb, &arg);
  EXPECT_EQ(verb, "QUIT");
  EXPECT_EQ(arg, "");
}

TEST(Command, PathCommands) {
  struct Case {
    const char* arg;
    const char* prefix;
    bool ok;
    const char* address;
    size_t params;
  } cases[] = {
      {"FROM:<a@b.c>", "FROM:", true, "a@b.c", 0},
      {"from: <a@b.c> SIZE=100 BODY=8BITMIME", "FROM:", true, "a@b.c", 2},
      {"FROM:<>", "FROM:", true, "", 0},
      {"FROM:a@b.c", "FROM:", true, "a@b.c", 0},
      {"TO:<@relay.example,@x.example:user@d.example>", "TO:", true,
       "user@d.example", 0},
      {"TO:<a@b", "TO:", false, "", 0},
      {"TO:<a@b>x", "TO:", false, "", 0},
      {"FROM <a@b>", "FROM:", false, "", 0},
      {"TO:", "TO:", false, "", 0},
      {"FROM:<a@b> =x", "FROM:", false, "", 0},
  };
  for (const auto& c : cases) {
    PathCommand pc;
    bool ok = ParsePathCommand(c.arg, c.prefix, &pc);
    EXPECT_EQ(ok, c.ok) << c.arg;
    if (ok) {
      EXPECT_EQ(pc.address, c.address) << c.arg;
      EXPECT_EQ(pc.params.size(), c.params) << c.arg;
    }
  }
}

TEST(Command, Mailboxes) {
  EXPECT_TRUE(ValidMailbox("user@example.com"));
  EXPECT_TRUE(ValidMailbox("Postmaster"));
  EXPECT_TRUE(ValidMailbox("用户@例子.广告"));
  EXPECT_FALSE(ValidMailbox("user"));
  EXPECT_FALSE(ValidMailbox("us er@example.com"));
  EXPECT_FALSE(ValidMailbox("user@"));
  EXPECT_FALSE(ValidMailbox(std::string(300, 'a') + "@b"));
  EXPECT_FALSE(ValidMailbox(std::string("a\0b@c", 5)));
  EXPECT_EQ(DomainOf("a@b@Example.COM"), "Example.COM");
}

TEST(Command, Counts) {
  uint64_t v;
  EXPECT_TRUE(ParseCount("0", &v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(ParseCount("1048576", &v));
  EXPECT_EQ(v, 1048576u);
  EXPECT_FALSE(ParseCount("", &v));
  EXPECT_FALSE(ParseCount("-1", &v));
  EXPECT_FALSE(ParseCount("12a", &v));
  EXPECT_FALSE(ParseCount("99999999999999999999", &v));
}

}  // namespace
}  // namespace smtp
