// Exports of harvester addresses (list=harvesters): the exporters fed with
// TrapLedger::HarvesterIps, and `spamsink export --list harvesters`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "ledger/sqlite_store.h"
#include "ledger/test_util.h"
#include "ledger/trap_ledger.h"

namespace ledger {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A visit of the site by ip, and a label's harvest (no address).
void Harvest(TrapLedger* traps, const std::string& ip,
             const std::string& label) {
  traps::Harvest h;
  h.ip = ip;
  h.label = label;
  h.ref = uint32_t(std::hash<std::string>()(ip + label));
  h.minute = 29000000;
  h.time = 1.74e9;
  h.user_agent = "Harvester/2.0";
  h.page = "/people/";
  h.addresses = 6;
  traps->AddHarvest(h);
}

std::string Render(TrapLedger* traps, Format format) {
  ExportOptions o;
  o.format = format;
  o.list = ExportList::kHarvesters;
  o.record_v6_prefix = 64;  // the sources' setting; harvesters stay exact
  std::string out;
  auto s = ExportHarvesters(traps, o, [&out](std::string_view text) {
    out += text;
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

TEST(TrapExport, EveryFormatListsTheHarvestersIps) {
  auto traps = TrapLedger::Open(":memory:", traps::KeyRing(), 3600).value();
  EXPECT_EQ(Render(traps.get(), Format::kPlain), "");
  Harvest(traps.get(), "192.0.2.77", "");
  Harvest(traps.get(), "2001:db8::5", "");
  Harvest(traps.get(), "192.0.2.3", "");
  Harvest(traps.get(), "", "forum-2026");  // a label: no address to list
  ASSERT_TRUE(traps->Flush().ok());

  // By ascending IP, IPv6 exact although sources are kept per /64.
  EXPECT_EQ(Render(traps.get(), Format::kPlain),
            "192.0.2.3\n192.0.2.77\n2001:db8::5\n");
  std::string zone = Render(traps.get(), Format::kRbldnsd);
  EXPECT_THAT(zone, HasSubstr("192.0.2.77"));
  EXPECT_THAT(zone, HasSubstr("192.0.2.3"));
  EXPECT_THAT(zone, HasSubstr("2001:db8::5"));
  std::string nft = Render(traps.get(), Format::kNftables);
  EXPECT_THAT(nft, HasSubstr("192.0.2.3, 192.0.2.77"));
  EXPECT_THAT(nft, HasSubstr("2001:db8::5"));
  EXPECT_THAT(nft, Not(HasSubstr("2001:db8::/64")));
  // The other formats take the same records.
  for (Format f : {Format::kCidr, Format::kCsv, Format::kJsonl,
                   Format::kPostfix, Format::kSpamd, Format::kStix}) {
    EXPECT_THAT(Render(traps.get(), f), HasSubstr("192.0.2.77"))
        << FormatName(f);
  }
}

TEST(TrapExport, TheCommandListsHarvestersFromTheDatabaseFile) {
  testing::TempDir dir;
  std::string db = dir.File("s.db");
  {
    auto store = OpenSqliteStore(db).value();
    SourceRecord r;
    r.ip = base::IpAddress::Parse("198.51.100.1").value();
    r.messages = 3;
    ASSERT_TRUE(store->Apply({r}).ok());
    auto traps = TrapLedger::Open(db, traps::KeyRing(), 3600).value();
    Harvest(traps.get(), "192.0.2.77", "");
    ASSERT_TRUE(traps->Flush().ok());
  }
  std::ostringstream out, err;
  EXPECT_EQ(RunExportCommand({"--format", "plain", "--list", "harvesters"}, db,
                             {}, out, err),
            0)
      << err.str();
  EXPECT_EQ(out.str(), "192.0.2.77\n");
  out.str("");
  EXPECT_EQ(RunExportCommand({"--format", "plain"}, db, {}, out, err), 0);
  EXPECT_EQ(out.str(), "198.51.100.1\n");  // sources stay the default list

  out.str("");
  EXPECT_EQ(RunExportCommand({"--format=nftables", "--list=harvesters"}, db, {},
                             out, err),
            0)
      << err.str();
  EXPECT_THAT(out.str(), HasSubstr("192.0.2.77"));
  EXPECT_THAT(out.str(), Not(HasSubstr("198.51.100.1")));

  err.str("");
  EXPECT_EQ(RunExportCommand({"--format", "plain", "--list", "harvesters",
                              "--min-messages", "2"},
                             db, {}, out, err),
            2);
  EXPECT_THAT(err.str(), HasSubstr("min_messages"));
  EXPECT_EQ(RunExportCommand({"--format", "plain", "--list", "spammers"}, db,
                             {}, out, err),
            2);
  // A database of a sink whose traps were never on has no trap tables.
  std::string bare = dir.File("bare.db");
  { ASSERT_TRUE(OpenSqliteStore(bare).ok()); }
  err.str("");
  EXPECT_EQ(RunExportCommand({"--format", "plain", "--list", "harvesters"},
                             bare, {}, out, err),
            1);
  EXPECT_THAT(err.str(), HasSubstr("trap_harvests"));
}

}  // namespace
}  // namespace ledger
