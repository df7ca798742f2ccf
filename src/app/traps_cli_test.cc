// `spamsink traps --generate N --domain D --label L`, run as an operator
// would: N verifiable addresses, the label's harvest in the ledger, and
// the refusals.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "app/cli_test_util.h"
#include "ledger/test_util.h"
#include "ledger/trap_ledger.h"
#include "traps/token.h"

namespace app_test {
namespace {

using ::testing::HasSubstr;

constexpr const char* kKey = "3:a-long-enough-trap-secret";

class TrapsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string bin = SpamsinkPath();
    if (bin.empty() || access(bin.c_str(), X_OK) != 0) {
      GTEST_SKIP() << "SPAMSINK_BUILD_DIR/spamsink not built";
    }
    toml_ = dir_.File("spamsink.toml");
    std::ofstream(toml_) << "[ledger]\ndb_path = \"" << dir_.File("s.db")
                         << "\"\n[traps]\ndomains = [\"trap.example\", "
                            "\"other.example\"]\nkeys = [\""
                         << kKey << "\"]\n";
  }
  RunResult Generate(const std::string& n, const std::string& domain,
                     const std::string& label) {
    return RunSpamsink({"--config", toml_, "traps", "--generate", n, "--domain",
                        domain, "--label", label});
  }
  ledger::testing::TempDir dir_;
  std::string toml_;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST_F(TrapsCli, PrintsNVerifiableAddressesAndRecordsTheLabel) {
  RunResult r = Generate("25", "trap.example", "forum.example.net/sig");
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 25u) << r.out;
  auto keys = traps::KeyRing::Parse({kKey}).value();
  std::set<std::string> distinct(lines.begin(), lines.end());
  EXPECT_EQ(distinct.size(), 25u);
  std::set<uint32_t> refs;
  for (const auto& a : lines) {
    EXPECT_THAT(a, ::testing::EndsWith("@trap.example"));
    traps::Checked c = traps::Verify(keys, a);
    EXPECT_EQ(c.verdict, traps::Verdict::kValid) << a;
    refs.insert(c.attribution.ref);
  }
  EXPECT_EQ(refs.size(), 1u);  // one harvest: the label's

  // Mail to one of them is attributed to the label.
  auto traps = ledger::TrapLedger::Open(dir_.File("s.db"), keys, 3600);
  ASSERT_TRUE(traps.ok()) << traps.error();
  auto hs = (*traps)->Harvesters(10);
  ASSERT_TRUE(hs.ok());
  ASSERT_EQ(hs->size(), 1u);
  EXPECT_EQ((*hs)[0].label, "forum.example.net/sig");
  EXPECT_EQ((*hs)[0].ip, "");
  EXPECT_EQ((*hs)[0].addresses, 25u);
  (*traps)->AddSession("198.51.100.4", 2e9, {lines[3]});
  ASSERT_TRUE((*traps)->Flush().ok());
  auto links = (*traps)->LinksOf("198.51.100.4");
  ASSERT_EQ(links->size(), 1u);
  EXPECT_EQ((*links)[0].label, "forum.example.net/sig");
}

TEST_F(TrapsCli, RefusesADomainNotInTrapsDomainsAndBadCounts) {
  RunResult r = Generate("3", "elsewhere.example", "x");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("\"elsewhere.example\" is not one of "
                               "traps.domains"));
  EXPECT_EQ(r.out, "");
  r = Generate("0", "trap.example", "x");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("between 1 and 10000"));
  r = Generate("3", "trap.example", "");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("--label"));
  // Nothing was recorded for the refused requests.
  auto traps = ledger::TrapLedger::Open(dir_.File("s.db"), traps::KeyRing(),
                                        3600, 0, true);
  if (traps.ok()) {
    auto hs = (*traps)->Harvesters(10);
    EXPECT_TRUE(!hs.ok() || hs->empty());
  }
  // The other configured domain works.
  r = Generate("2", "other.example", "paste");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 2u);
}

}  // namespace
}  // namespace app_test
