#include "config/config.h"

#include <gtest/gtest.h>

#include "config/cli.h"
#include "config/fields.h"

namespace config {
namespace {

TEST(Config, EmptyFileGivesDefaults) {
  auto c = ParseToml("", "t.toml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->smtp.persona, "postfix");
  EXPECT_EQ(c->smtp.max_line_length, 512);
  EXPECT_EQ(c->server.listen,
            (std::vector<std::string>{"127.0.0.1:25", "[::1]:25"}));
  EXPECT_TRUE(Validate(*c).ok());
}

TEST(Config, ReadsEveryKind) {
  auto c = ParseToml(R"(
[server]
listen = ["0.0.0.0:2525", "[::]:2525"]
max_connections_per_ip = 7
proxy_timeout = 2
[smtp]
persona = "exim"
session_timeout = 1.5
auth = true
max_message_size = 20000000000
)",
                     "t.toml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->server.listen.size(), 2u);
  EXPECT_EQ(c->server.max_connections_per_ip, 7);
  EXPECT_DOUBLE_EQ(c->server.proxy_timeout, 2.0);
  EXPECT_EQ(c->smtp.persona, "exim");
  EXPECT_DOUBLE_EQ(c->smtp.session_timeout, 1.5);
  EXPECT_TRUE(c->smtp.auth);
  EXPECT_EQ(c->smtp.max_message_size, 20000000000ll);
}

struct BadCase {
  const char* text;
  const char* expect;  // substring of the error
};

TEST(Config, ErrorsNameKeyAndLine) {
  const BadCase cases[] = {
      {"[smtp]\nmax_recipients = 0\n",
       "t.toml:2: smtp.max_recipients: 0 is out of range"},
      {"[smtp]\n\nmax_recipents = 5\n",
       "t.toml:3: smtp.max_recipents: unknown key"},
      {"[smtp]\npersona = \"qmail\"\n",
       "t.toml:2: smtp.persona: \"qmail\" is not one of"},
      {"[smtp]\nauth = \"yes\"\n",
       "t.toml:2: smtp.auth: expected true or false"},
      {"[server]\nlisten = \"0.0.0.0:25\"\n",
       "t.toml:2: server.listen: expected an array"},
      {"[nope]\nx = 1\n", "t.toml:1: [nope]: unknown table"},
      {"persona = \"exim\"\n", "t.toml:1: persona: unknown setting"},
      {"[smtp]\nmax_line_length = 1.5\n",
       "t.toml:2: smtp.max_line_length: expected an integer"},
      {"[smtp\n", "t.toml:1:"},
  };
  for (const auto& bc : cases) {
    auto c = ParseToml(bc.text, "t.toml");
    ASSERT_FALSE(c.ok()) << bc.text;
    EXPECT_NE(c.error().find(bc.expect), std::string::npos)
        << "got: " << c.error();
  }
}

TEST(Config, TarpitEnumsAndRanges) {
  auto c = ParseToml(
      "[tarpit]\nenabled = true\nmode = \"give_up\"\nverdict_bot = "
      "\"tempfail\"\ngreeting_min = 1\ngreeting_max = 3.5\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_TRUE(c->tarpit.enabled);
  EXPECT_EQ(c->tarpit.mode, tarpit::Mode::kGiveUp);
  EXPECT_EQ(c->tarpit.verdict_bot, tarpit::Verdict::kTempfail);
  EXPECT_DOUBLE_EQ(c->tarpit.greeting.max, 3.5);
  auto bad = ParseToml("[tarpit]\n\nmode = \"sleepy\"\n", "t.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("t.toml:3: tarpit.mode: \"sleepy\" is not one of"),
            std::string::npos)
      << bad.error();
  Config r;
  r.tarpit.greeting = {5, 2};
  EXPECT_FALSE(Validate(r).ok());
}

TEST(Config, ValidateCrossFieldRules) {
  Config c;
  c.api.listen = "0.0.0.0:8025";
  EXPECT_FALSE(Validate(c).ok());
  c.api.token = "secret";
  EXPECT_TRUE(Validate(c).ok());
  c.server.listen = {"mail.example.com:25"};
  EXPECT_FALSE(Validate(c).ok());
  c.server.listen = {"[::]:25"};
  c.server.proxy_trusted = {"10.0.0.0/40"};
  EXPECT_FALSE(Validate(c).ok());
  c.server.proxy_trusted = {"10.0.0.0/8"};
  c.smtp.tls_cert = "cert.pem";
  EXPECT_FALSE(Validate(c).ok());
}

TEST(Config, DefaultsRoundTrip) {
  std::string text = DefaultsToml();
  auto c = ParseToml(text, "defaults");
  ASSERT_TRUE(c.ok()) << c.error();
  Config d;
  for (const auto& f : Fields()) {
    EXPECT_EQ(ValueToToml(c.value(), f), ValueToToml(d, f)) << f.Name();
  }
  EXPECT_NE(ReferenceMarkdown().find("`max_recipients`"), std::string::npos);
}

TEST(Config, CommandLineOverridesFile) {
  auto c = ParseToml("[smtp]\nmax_recipients = 5\n", "t.toml");
  ASSERT_TRUE(c.ok());
  CLI::App app;
  Overrides o;
  AddFlags(&app, &o);
  const char* argv[] = {"spamsink",
                        "--smtp-max-recipients",
                        "9",
                        "--listen",
                        "127.0.0.1:2525",
                        "--listen",
                        "[::1]:2525",
                        "--persona",
                        "exchange"};
  app.parse(9, const_cast<char**>(argv));
  Config cfg = *c;
  ASSERT_TRUE(ApplyOverrides(o, &cfg).ok());
  EXPECT_EQ(cfg.smtp.max_recipients, 9);
  EXPECT_EQ(cfg.smtp.persona, "exchange");
  EXPECT_EQ(cfg.server.listen,
            (std::vector<std::string>{"127.0.0.1:2525", "[::1]:2525"}));
  Overrides bad = {{"smtp.max_recipients", {"many"}}};
  auto s = ApplyOverrides(bad, &cfg);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--smtp-max-recipients"), std::string::npos);
}

}  // namespace
}  // namespace config
