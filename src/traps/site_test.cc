#include "traps/site.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace traps {
namespace {

constexpr double kNow = 1.75e9;

Site MakeSite() {
  Options o;
  o.domains = {"trap.example", "mail.trap.example"};
  auto ring = KeyRing::Parse({"1:the-site-secret-key"});
  return Site(o, ring.value(), LoadWords("/nonexistent/words"));
}

std::vector<std::string> Addresses(const std::string& body) {
  std::regex re(R"([a-z]+\.[a-z]+\.[a-z2-9]{20}@[a-z.]+[a-z])");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(body.begin(), body.end(), re);
       it != std::sregex_iterator(); ++it) {
    out.push_back(it->str());
  }
  return out;
}

TEST(Site, SamePathAndKeySameVisitorSamePage) {
  Site site = MakeSite();
  Visit v{"/people/alpha-beta/", "192.0.2.7", "wget/1.21", kNow};
  Response a = site.Serve(v), b = site.Serve(v);
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, b.body);
  // Another site object with the same key: the same page.
  EXPECT_EQ(MakeSite().Serve(v).body, a.body);
  // Without the trailing slash: the same page.
  Visit bare = v;
  bare.path = "/people/alpha-beta";
  EXPECT_EQ(site.Serve(bare).body, a.body);
  // Another path: another page.
  Visit other = v;
  other.path = "/people/alpha-gamma/";
  EXPECT_NE(site.Serve(other).body, a.body);
}

TEST(Site, DifferentVisitorsSeeDifferentAddressesThatVerify) {
  Site site = MakeSite();
  Response a = site.Serve({"/people/", "192.0.2.7", "wget/1.21", kNow});
  Response b = site.Serve({"/people/", "192.0.2.8", "wget/1.21", kNow});
  Response c = site.Serve({"/people/", "192.0.2.7", "curl/8", kNow});
  auto aa = Addresses(a.body), ab = Addresses(b.body), ac = Addresses(c.body);
  ASSERT_EQ(aa.size(), 6u);
  ASSERT_EQ(ab.size(), 6u);
  std::set<std::string> seen(aa.begin(), aa.end());
  for (auto& x : ab) EXPECT_FALSE(seen.count(x)) << x;
  for (auto& x : ac) EXPECT_FALSE(seen.count(x)) << x;
  ASSERT_TRUE(a.harvest.has_value());
  EXPECT_EQ(a.harvest->ip, "192.0.2.7");
  EXPECT_EQ(a.harvest->user_agent, "wget/1.21");
  EXPECT_EQ(a.harvest->page, "/people/");
  EXPECT_EQ(a.harvest->addresses, 6);
  for (auto& x : aa) {
    Checked ck = Verify(site.keys(), x);
    ASSERT_EQ(ck.verdict, Verdict::kValid) << x;
    EXPECT_EQ(ck.attribution.ref, a.harvest->ref);
    EXPECT_EQ(ck.attribution.minute, int64_t(kNow / 60));
  }
  // Half of them as mailto: links.
  size_t mailto = 0;
  for (size_t p = 0; (p = a.body.find("mailto:", p)) != std::string::npos;
       ++p) {
    ++mailto;
  }
  EXPECT_EQ(mailto, 3u);
}

TEST(Site, LinksGoDeeperAndRobotsDisallowsTheTree) {
  Site site = MakeSite();
  Response r = site.Serve({"/people/a/", "192.0.2.7", "x", kNow});
  std::regex link(R"re(href="(/people/a/[a-z]+-[a-z]+/)")re");
  int n = 0;
  for (auto it = std::sregex_iterator(r.body.begin(), r.body.end(), link);
       it != std::sregex_iterator(); ++it) {
    ++n;
    Response deeper = site.Serve({(*it)[1].str(), "192.0.2.7", "x", kNow});
    EXPECT_EQ(deeper.status, 200) << (*it)[1].str();
  }
  EXPECT_EQ(n, 8);
  Response robots = site.Serve({"/robots.txt", "192.0.2.7", "x", kNow});
  EXPECT_EQ(robots.status, 200);
  EXPECT_EQ(robots.body, "User-agent: *\nDisallow: /people/\n");
  EXPECT_FALSE(robots.harvest.has_value());
  Response home = site.Serve({"/", "192.0.2.7", "x", kNow});
  EXPECT_NE(home.body.find("href=\"/people/\""), std::string::npos);
  EXPECT_FALSE(home.harvest.has_value());
}

TEST(Site, HostilePathsAreRefusedWithClearCodes) {
  Site site = MakeSite();
  auto status = [&](std::string path) {
    return site.Serve({path, "192.0.2.7", "x", kNow}).status;
  };
  EXPECT_EQ(status("/people/../etc/passwd"), 400);
  EXPECT_EQ(status("/../../etc/passwd"), 400);
  EXPECT_EQ(status("/people//x/"), 400);
  EXPECT_EQ(status("/people/a\\b/"), 400);
  EXPECT_EQ(status(std::string("/people/a\0b/", 12)), 400);
  EXPECT_EQ(status("/people/\xff\xfe/"), 400);
  EXPECT_EQ(status("/people/\xc0\xaf/"), 400);      // overlong '/'
  EXPECT_EQ(status("/people/\xed\xa0\x80/"), 400);  // a surrogate
  EXPECT_EQ(status("/people/\xe2\x82"), 400);       // cut short
  EXPECT_EQ(status("/people/" + std::string(2000, 'a')), 400);
  EXPECT_EQ(status("/people/caf\xc3\xa9/"), 404);  // valid UTF-8, not ours
  EXPECT_EQ(status("/people/" + std::string(41, 'a') + "/"), 404);
  EXPECT_EQ(status("/people/UPPER/"), 404);
  EXPECT_EQ(status("/etc/passwd"), 404);
  EXPECT_EQ(status("/people"), 200);
  std::string deep = "/people/";
  for (int i = 0; i < 32; ++i) deep += "a/";
  EXPECT_EQ(status(deep), 200);
  EXPECT_EQ(status(deep + "a/"), 404);
  EXPECT_EQ(
      site.Serve({deep, "192.0.2.7", "x", kNow}).body.find("href=\"" + deep),
      std::string::npos);  // no links past the depth bound
}

TEST(Site, WordsComeFromTheListOrTheBuiltIns) {
  EXPECT_GE(LoadWords("/nonexistent").size(), 50u);
  auto words = LoadWords("/usr/share/dict/words");
  for (auto& w : words) {
    ASSERT_GE(w.size(), 3u);
    ASSERT_LE(w.size(), 12u);
  }
}

}  // namespace
}  // namespace traps
