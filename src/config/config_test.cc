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
  EXPECT_EQ(c->smtp.max_line_length, 2048);
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

// server.listen and api.listen are read by base::Endpoint as the file is
// parsed: "127.0.0.1:65561" used to pass and then listen on port 25,
// "127.0.0.1:abc" to pass --check-config and then abort.
TEST(Config, ListenAddressesAreCheckedAsRead) {
  const BadCase cases[] = {
      {"[server]\nlisten = [\"127.0.0.1:25\", \"127.0.0.1:65561\"]\n",
       "t.toml:2: server.listen: \"127.0.0.1:65561\": port 65561 is out of "
       "range (0 to 65535); e.g. 127.0.0.1:25"},
      {"[server]\nlisten = [\"127.0.0.1:97000\"]\n",
       "t.toml:2: server.listen: \"127.0.0.1:97000\": port 97000 is out of "
       "range"},
      {"[server]\nlisten = [\"127.0.0.1:abc\"]\n",
       "t.toml:2: server.listen: \"127.0.0.1:abc\": port \"abc\" is neither "
       "a number nor a known service name; e.g. 127.0.0.1:25"},
      {"[server]\nlisten = [\"127.0.0.1\"]\n",
       "t.toml:2: server.listen: \"127.0.0.1\": missing \":port\""},
      {"[server]\nlisten = [\"mx.example.com:25\"]\n",
       "server.listen: \"mx.example.com:25\": \"mx.example.com\" is not an IP "
       "address"},
      {"[api]\nlisten = \"127.0.0.1:80800\"\n",
       "t.toml:2: api.listen: \"127.0.0.1:80800\": port 80800 is out of "
       "range"},
      {"[server]\nproxy_trusted = [\"10.0.0.0/8\", \"10.0.0.0/40\"]\n",
       "t.toml:2: server.proxy_trusted: \"10.0.0.0/40\" is not a network; "
       "e.g. 10.0.0.0/8"},
  };
  for (const auto& bc : cases) {
    auto c = ParseToml(bc.text, "t.toml");
    ASSERT_FALSE(c.ok()) << bc.text;
    EXPECT_NE(c.error().find(bc.expect), std::string::npos)
        << "got: " << c.error();
  }
  auto c = ParseToml("[server]\nlisten = [\"127.0.0.1:smtp\", \"[::1]:25\"]\n",
                     "t.toml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_TRUE(Validate(*c).ok());
}

// The nft table name is pasted into `nft -f` scripts: a name carrying
// statements ("flush ruleset") is refused where it is read.
TEST(Config, NftTableNameIsChecked) {
  auto c =
      ParseToml("[tarpit]\nnft_table = \"x {}\\nflush ruleset\"\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("t.toml:2: tarpit.nft_table: nft table name "
                           "\"x {}\nflush ruleset\""),
            std::string::npos)
      << c.error();
  Overrides o = {{"tarpit.nft_table", {"t; flush ruleset"}}};
  Config cfg;
  auto s = ApplyOverrides(o, &cfg);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--tarpit-nft-table (tarpit.nft_table): nft "
                             "table name \"t; flush ruleset\""),
            std::string::npos)
      << s.message();
  Config built;
  built.tarpit.nft_table = "t\ndelete table inet filter";
  EXPECT_FALSE(Validate(built).ok());
  built.tarpit.nft_table = "spamsink_2";
  EXPECT_TRUE(Validate(built).ok());
}

TEST(Config, EnumeratedStringsListTheChoices) {
  const BadCase cases[] = {
      {"[smtp]\npersona = \"qmail\"\n",
       "t.toml:2: smtp.persona: \"qmail\" is not one of postfix, exim, "
       "sendmail, exchange, custom"},
      {"[smtp]\nfinal_reply = \"bounce\"\n",
       "t.toml:2: smtp.final_reply: \"bounce\" is not one of accept, "
       "tempfail, reject"},
      {"[log]\nlevel = \"loud\"\n",
       "t.toml:2: log.level: \"loud\" is not one of debug, info, warning, "
       "error"},
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
  c.server.listen = {"127.0.0.1:65561"};
  auto bad_port = Validate(c);
  ASSERT_FALSE(bad_port.ok());
  EXPECT_EQ(bad_port.message().rfind("server.listen: \"127.0.0.1:65561\": "
                                     "port 65561 is out of range",
                                     0),
            0u)
      << bad_port.message();
  c.server.listen = {"[::]:25"};
  c.server.proxy_trusted = {"10.0.0.0/40"};
  auto bad_net = Validate(c);
  ASSERT_FALSE(bad_net.ok());
  EXPECT_NE(bad_net.message().find("server.proxy_trusted: \"10.0.0.0/40\""),
            std::string::npos)
      << bad_net.message();
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

// --print-defaults used to print jitter = 0.20000000000000001.
TEST(Config, NumbersAreShortestRoundTrip) {
  EXPECT_EQ(FormatNumber(0.2), "0.2");
  EXPECT_EQ(FormatNumber(0.95), "0.95");
  EXPECT_EQ(FormatNumber(540), "540.0");
  EXPECT_EQ(FormatNumber(0.1 + 0.2), "0.30000000000000004");  // exact
  EXPECT_EQ(FormatNumber(1e18), "1e+18");
  std::string text = DefaultsToml();
  EXPECT_NE(text.find("\njitter = 0.2\n"), std::string::npos);
  // (10 zeros: ledger.max_sources = 10000000 has 7.)
  EXPECT_EQ(text.find("0000000000"), std::string::npos);
}

TEST(Config, EffectiveRedactsSecrets) {
  Config c;
  c.api.token = "s3cret-api-token";
  c.traps.keys = {"1:first-secret-of-16+", "2:second-secret-of-16+"};
  for (bool non_default : {false, true}) {
    std::string text = EffectiveToml(c, non_default);
    EXPECT_EQ(text.find("s3cret"), std::string::npos) << text;
    EXPECT_EQ(text.find("secret-of"), std::string::npos) << text;
    EXPECT_NE(text.find("\ntoken = \"<redacted>\"\n"), std::string::npos)
        << text;
    EXPECT_NE(text.find("\nkeys = [\"<redacted>\", \"<redacted>\"]\n"),
              std::string::npos)
        << text;
  }
  // Unset secrets print as their defaults, so an operator sees they are off.
  std::string plain = EffectiveToml(Config{}, false);
  EXPECT_NE(plain.find("\ntoken = \"\"\n"), std::string::npos);
  EXPECT_NE(plain.find("\nkeys = []\n"), std::string::npos);
  // ChangedKeys (reload) still sees a changed secret.
  Config d = c;
  d.api.token = "another-token";
  EXPECT_EQ(ChangedKeys(c, d), std::vector<std::string>{"api.token"});
}

TEST(Config, EffectiveAndNonDefault) {
  Config c;
  EXPECT_EQ(EffectiveToml(c, true), "");
  c.tarpit.enabled = true;
  c.tarpit.exempt = {"192.0.2.0/24"};
  c.smtp.session_timeout = 900;
  EXPECT_EQ(EffectiveToml(c, true),
            "[smtp]\nsession_timeout = 900.0\n\n[tarpit]\nenabled = true\n"
            "exempt = [\"192.0.2.0/24\"]\n");
  auto back = ParseToml(EffectiveToml(c, false), "effective");
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(ChangedKeys(c, *back), std::vector<std::string>{});
  EXPECT_EQ(ChangedKeys(Config{}, c),
            (std::vector<std::string>{"smtp.session_timeout", "tarpit.enabled",
                                      "tarpit.exempt"}));
}

TEST(Config, UnknownKeysSuggestTheClosest) {
  auto c = ParseToml("[smtp]\nmax_recipient = 3\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(),
            "t.toml:2: smtp.max_recipient: unknown key; did you mean "
            "smtp.max_recipients?");
  // In another table: named with its table.
  c = ParseToml("[smtp]\nmax_connections = 3\n", "t.toml");
  EXPECT_NE(c.error().find("did you mean server.max_connections?"),
            std::string::npos);
  c = ParseToml("[smtp]\nfrobnicate = 3\n", "t.toml");
  EXPECT_EQ(c.error(), "t.toml:2: smtp.frobnicate: unknown key");
}

TEST(Config, ExemptAndMaxDelay) {
  auto c = ParseToml(
      "[tarpit]\nexempt = [\"192.0.2.0/24\", \"2001:db8::1\"]\n"
      "max_delay = 20\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->tarpit.exempt.size(), 2u);
  EXPECT_DOUBLE_EQ(c->tarpit.max_delay, 20);
  c = ParseToml("[tarpit]\nexempt = [\"example.com\"]\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("t.toml:2: tarpit.exempt: \"example.com\" is not "
                           "a network"),
            std::string::npos)
      << c.error();
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
  // A flag's error names the flag, the key, the value and the reason.
  bad = {{"server.listen", {"127.0.0.1:2525", "127.0.0.1:abc"}}};
  s = ApplyOverrides(bad, &cfg);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("--listen (server.listen): \"127.0.0.1:abc\": "
                              "port \"abc\" is neither",
                              0),
            0u)
      << s.message();
}

// A build without the PostgreSQL store (cmake -DSPAMSINK_POSTGRES=OFF, the
// appliance) refuses its settings by name; this build has the store.
TEST(Config, PostgresSettingsNeedABuildWithPostgres) {
  auto c = ParseToml(R"(
[ledger]
store = "postgresql"
postgresql_url = "host=127.0.0.1 dbname=spamsink"
)",
                     "t.toml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_TRUE(Validate(*c).ok()) << Validate(*c).message();
  std::string e = ledger::PostgresSupportError(c->ledger, false);
  EXPECT_NE(e.find("ledger.store: this build has no PostgreSQL support"),
            std::string::npos)
      << e;
  ledger::Options url_only;
  url_only.postgresql_url = "postgresql://db.example/spamsink";
  EXPECT_NE(ledger::PostgresSupportError(url_only, false)
                .find("ledger.postgresql_url: this build has no PostgreSQL"),
            std::string::npos);
  EXPECT_EQ(ledger::PostgresSupportError(ledger::Options{}, false), "");
  EXPECT_EQ(ledger::PostgresSupportError(c->ledger, true), "");
}

}  // namespace
}  // namespace config
