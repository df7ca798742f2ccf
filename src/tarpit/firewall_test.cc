#include "tarpit/firewall.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace tarpit {
namespace {

// Listen addresses are read by base::Endpoint; the firewall adds that it
// needs a fixed port.
TEST(FirewallTest, ListenEndpoints) {
  struct Case {
    const char* listen;
    bool ok;
    const char* address;
    uint16_t port;
  };
  const Case cases[] = {
      {"192.0.2.1:25", true, "192.0.2.1", 25},
      {"[2001:db8::1]:2525", true, "2001:db8::1", 2525},
      {"0.0.0.0:25", true, "0.0.0.0", 25},
      {"[::]:25", true, "::", 25},
      {"127.0.0.1:65535", true, "127.0.0.1", 65535},
      {"localhost:smtp", true, "127.0.0.1", 25},
      {"mx.example:25", false, "", 0},
      {"192.0.2.1", false, "", 0},
      {"192.0.2.1:0", false, "", 0},
      {"192.0.2.1:65536", false, "", 0},
      {"192.0.2.1:25x", false, "", 0},
      {"[::1:25", false, "", 0},
      {"[::1]25", false, "", 0},
      {"", false, "", 0},
  };
  Options o;
  o.drop_percent = 20;
  for (const Case& c : cases) {
    auto r = MakeDropRuleset(o, {c.listen});
    ASSERT_EQ(r.ok(), c.ok) << c.listen;
    if (!c.ok) {
      EXPECT_NE(r.error().find(std::string("\"") + c.listen + "\""),
                std::string::npos)
          << r.error();
      continue;
    }
    ASSERT_EQ(r->endpoints.size(), 1u);
    EXPECT_EQ(r->endpoints[0].port, c.port);
    EXPECT_EQ(r->endpoints[0].address.ToString(), c.address);
  }
}

TEST(FirewallTest, TableNames) {
  EXPECT_TRUE(ValidTableName("spamsink"));
  EXPECT_TRUE(ValidTableName("_spam-sink2"));
  EXPECT_FALSE(ValidTableName(""));
  EXPECT_FALSE(ValidTableName("2spamsink"));
  EXPECT_FALSE(ValidTableName("spam sink"));
  EXPECT_FALSE(ValidTableName("x; flush ruleset"));
  EXPECT_FALSE(ValidTableName(std::string(33, 'a')));
}

DropRuleset Make(double percent, std::vector<std::string> listen,
                 std::vector<std::string> exempt = {}, bool data_only = true) {
  Options o;
  o.drop_percent = percent;
  o.drop_data_only = data_only;
  auto r = MakeDropRuleset(o, listen, exempt);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : DropRuleset{};
}

TEST(FirewallTest, AddScriptRules) {
  auto script = AddScript(
      Make(20, {"192.0.2.1:25", "[2001:db8::1]:25", "0.0.0.0:2525", "[::]:587"},
           {"198.51.100.0/24", "2001:db8:1::/48"}));
  ASSERT_TRUE(script.ok()) << script.error();
  const std::string& s = *script;
  const std::string tail =
      " tcp flags & (fin | syn | rst) == 0 @ih,0,8 & 0x0 == 0x0"
      " numgen random mod 10000 < 2000 counter drop\n";
  // Not the exports' table "spamsink": applying the rule must not delete
  // the exported sets.
  EXPECT_NE(s.find("table inet spamsink_drop {}\n"
                   "delete table inet spamsink_drop\n"),
            std::string::npos);
  EXPECT_NE(s.find("hook input priority filter - 10; policy accept;"),
            std::string::npos);
  EXPECT_NE(s.find("ip saddr { 198.51.100.0/24 } accept\n"), std::string::npos);
  EXPECT_NE(s.find("ip6 saddr { 2001:db8:1::/48 } accept\n"),
            std::string::npos);
  EXPECT_NE(s.find("\tip daddr 192.0.2.1 tcp dport 25" + tail),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("\tip6 daddr 2001:db8::1 tcp dport 25" + tail),
            std::string::npos);
  EXPECT_NE(s.find("\tmeta nfproto ipv4 tcp dport 2525" + tail),
            std::string::npos);
  EXPECT_NE(s.find("\ttcp dport 587" + tail), std::string::npos);
  // Exemptions come before any drop.
  EXPECT_LT(s.find("accept\n"), s.find("counter drop\n"));
}

TEST(FirewallTest, PercentResolutionAndAllPackets) {
  auto s = AddScript(Make(0.25, {"192.0.2.1:25"}, {}, false));
  ASSERT_TRUE(s.ok());
  EXPECT_NE(s->find("tcp dport 25 tcp flags & (fin | syn | rst) == 0 numgen "
                    "random mod 10000 < 25 counter drop"),
            std::string::npos)
      << *s;
  EXPECT_EQ(s->find("@ih"), std::string::npos);
  s = AddScript(Make(100, {"192.0.2.1:25"}));
  ASSERT_TRUE(s.ok());
  EXPECT_NE(s->find("== 0x0 counter drop"), std::string::npos) << *s;
  EXPECT_EQ(s->find("numgen"), std::string::npos);
}

TEST(FirewallTest, Errors) {
  Options o;
  o.drop_percent = 20;
  EXPECT_FALSE(MakeDropRuleset(o, {"mx.example:25"}).ok());
  EXPECT_FALSE(MakeDropRuleset(o, {"192.0.2.1:25"}, {"nonsense"}).ok());
  EXPECT_FALSE(AddScript(Make(0, {"192.0.2.1:25"})).ok());
  EXPECT_FALSE(AddScript(Make(-1, {"192.0.2.1:25"})).ok());
  EXPECT_FALSE(AddScript(Make(100.5, {"192.0.2.1:25"})).ok());
  EXPECT_FALSE(AddScript(Make(20, {})).ok());
  DropRuleset r = Make(20, {"192.0.2.1:25"});
  r.table = "bad name";
  EXPECT_FALSE(AddScript(r).ok());
}

TEST(FirewallTest, DeleteScript) {
  auto s = DeleteScript("spamsink");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, "table inet spamsink {}\ndelete table inet spamsink\n");
}

// The table name is pasted into the script: a name carrying statements must
// be refused by both scripts, not printed.
TEST(FirewallTest, ScriptsRefuseInjectedTableNames) {
  for (const char* bad : {"x {}\nflush ruleset", "x; flush ruleset",
                          "spamsink\n", "", "a b", "t\"", "-x"}) {
    auto del = DeleteScript(bad);
    ASSERT_FALSE(del.ok()) << bad << " gave:\n" << *del;
    EXPECT_NE(del.error().find("nft table name"), std::string::npos);
    DropRuleset r = Make(20, {"192.0.2.1:25"});
    r.table = bad;
    EXPECT_FALSE(AddScript(r).ok()) << bad;
  }
}

// Runs `nft -c -f file` (a dry run: checks syntax and kernel support, changes
// nothing). Returns the exit status and sets *output.
int NftCheck(const std::string& script, std::string* output) {
  std::string path = testing::TempDir() + "tarpit_nft_check.nft";
  std::ofstream(path) << script;
  std::string cmd = "nft -c -f " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[512];
  output->clear();
  while (fgets(buf, sizeof buf, p) != nullptr) *output += buf;
  int status = pclose(p);
  std::remove(path.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(FirewallTest, NftAcceptsTheScripts) {
  std::string out;
  if (NftCheck("table inet spamsink_probe {}\n", &out) != 0) {
    GTEST_SKIP() << "`nft -c` cannot run here (nftables missing or no "
                    "CAP_NET_ADMIN): "
                 << out;
  }
  const DropRuleset rulesets[] = {
      Make(20, {"127.0.0.1:25", "[::1]:25"}),
      Make(0.01, {"0.0.0.0:25"}, {}, false),
      Make(100, {"[::]:25", "192.0.2.7:2525"},
           {"10.0.0.0/8", "192.0.2.0/24", "::1", "2001:db8::/32"}),
  };
  for (const DropRuleset& r : rulesets) {
    auto s = AddScript(r);
    ASSERT_TRUE(s.ok()) << s.error();
    EXPECT_EQ(NftCheck(*s, &out), 0) << *s << "\n" << out;
  }
  EXPECT_EQ(NftCheck(*DeleteScript("spamsink"), &out), 0) << out;
  // The check is real: nft rejects a broken rule.
  EXPECT_NE(NftCheck("table inet spamsink { chain input { tcp dport 25 "
                     "numgen random mod 100 < 300 drop } }\n",
                     &out),
            0);
}

}  // namespace
}  // namespace tarpit
