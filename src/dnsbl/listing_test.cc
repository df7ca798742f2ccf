// The index's fallback to the ledger: a source the bounded index forgot is
// still listed, misses are remembered, and the ledger is asked at most
// max_per_second times a second.
#include "dnsbl/listing.h"

#include <gtest/gtest.h>

#include "base/clock.h"
#include "ledger/ledger.h"
#include "ledger/test_util.h"

namespace dnsbl {
namespace {

using ledger::testing::Ip;
using ledger::testing::Session;

class FallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger_ =
        ledger::Ledger::Create(ledger::NewMemoryStore(), {}, &clock_, false);
    now_ = clock_.WallSeconds();
    // 2,000 senders, each fed to the ledger and to an index of ~160.
    for (int i = 0; i < 2000; ++i) {
      auto s = Session(
          "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250), 1,
          100, now_ - 2000 + i);
      ledger_->Record(s);
      index_.Update(s);
    }
    ASSERT_TRUE(ledger_->Flush().ok());
    ASSERT_LT(index_.size(), 2000u);
    ASSERT_TRUE(index_.incomplete());
  }
  void Connect(int per_second) {
    index_.SetFallback(
        [this](const base::IpAddress& key) -> std::optional<Entry> {
          ++asked_;
          auto r = ledger_->Source(key);
          if (!r.ok() || !r->has_value()) return std::nullopt;
          return EntryOf(**r);
        },
        per_second, 60);
  }
  base::FakeClock clock_;
  double now_ = 0;
  std::unique_ptr<ledger::Ledger> ledger_;
  Index index_{160};
  int asked_ = 0;
};

TEST_F(FallbackTest, ForgottenSourcesAreStillListed) {
  Connect(10000);
  Options o;
  int listed = 0;
  for (int i = 0; i < 2000; ++i) {
    auto ip =
        Ip("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250));
    listed += Decide(o, {}, ip, index_.Lookup(ip, now_), now_).has_value();
  }
  EXPECT_EQ(listed, 2000);
  EXPECT_GT(asked_, 0);
}

TEST_F(FallbackTest, MissesAreRememberedAndLookupsBounded) {
  Connect(3);
  auto unknown = Ip("192.0.2.1");
  EXPECT_FALSE(index_.Lookup(unknown, now_).has_value());
  EXPECT_FALSE(index_.Lookup(unknown, now_).has_value());
  EXPECT_EQ(asked_, 1);  // the second from the negative cache
  // Two more this second, then the bound: answered from memory only.
  for (int i = 2; i < 10; ++i) {
    index_.Lookup(Ip("192.0.2." + std::to_string(i)), now_);
  }
  EXPECT_EQ(asked_, 3);
  // A forgotten listed source in the next second is found again.
  auto forgotten = Ip("10.0.0.0");  // the oldest
  EXPECT_TRUE(index_.Lookup(forgotten, now_ + 1).has_value());
  EXPECT_EQ(asked_, 4);
  // And is held now: no second question.
  EXPECT_TRUE(index_.Lookup(forgotten, now_ + 1).has_value());
  EXPECT_EQ(asked_, 4);
  // The negative entry expires.
  EXPECT_FALSE(index_.Lookup(unknown, now_ + 61).has_value());
  EXPECT_EQ(asked_, 5);
}

TEST(Index, ACompleteIndexNeverAsks) {
  Index index(1000);
  int asked = 0;
  index.SetFallback(
      [&](const base::IpAddress&) -> std::optional<Entry> {
        ++asked;
        return std::nullopt;
      },
      100, 60);
  index.Update(Session("192.0.2.1", 1, 10));
  EXPECT_FALSE(index.Lookup(Ip("192.0.2.2"), 1.7e9).has_value());
  EXPECT_EQ(asked, 0);
  index.MarkIncomplete();
  EXPECT_FALSE(index.Lookup(Ip("192.0.2.2"), 1.7e9).has_value());
  EXPECT_EQ(asked, 1);
}

}  // namespace
}  // namespace dnsbl
