// The index's fallback to the ledger: a source the bounded index forgot is
// still listed, misses are remembered, the ledger is asked at most
// max_per_second times a second and never on the answering thread.
#include "dnsbl/listing.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>

#include "base/clock.h"
#include "base/metrics.h"
#include "ledger/ledger.h"
#include "ledger/test_util.h"

namespace dnsbl {
namespace {

using ledger::testing::Ip;
using ledger::testing::Session;

using base::Counter;
using base::CounterTotal;

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
        [this](
            const base::IpAddress& key) -> base::Result<std::optional<Entry>> {
          ++asked_;
          auto r = ledger_->Source(key);
          if (!r.ok()) return r.status();
          if (!r->has_value()) return std::optional<Entry>();
          return std::optional<Entry>(EntryOf(**r));
        },
        per_second, 60);
  }
  // Looks ip up as a query would, lets the look-up thread finish, and
  // looks again: what the next query is answered.
  bool ListedAfterLookup(const base::IpAddress& ip, double now) {
    index_.Lookup(ip, now);
    EXPECT_TRUE(index_.WaitIdle(10));
    return index_.Lookup(ip, now).has_value();
  }
  base::FakeClock clock_;
  double now_ = 0;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::atomic<int> asked_ = 0;
  Index index_{160};  // last: its look-up thread stops first
};

TEST_F(FallbackTest, ForgottenSourcesAreStillListed) {
  Connect(10000);
  Options o;
  uint64_t hits = CounterTotal(Counter::kDnsblLedgerHits);
  auto ip = [](int i) {
    return Ip("10.0." + std::to_string(i / 250) + "." +
              std::to_string(i % 250));
  };
  // Each query asks; the look-up lands in the index; the next query (a
  // resolver's retry, another resolver) lists it. One at a time: the index
  // of ~160 makes room for each by forgetting others.
  int listed = 0;
  for (int i = 0; i < 2000; ++i) {
    index_.Lookup(ip(i), now_);
    ASSERT_TRUE(index_.WaitIdle(10));
    listed +=
        Decide(o, {}, ip(i), index_.Lookup(ip(i), now_), now_).has_value();
  }
  EXPECT_EQ(listed, 2000);
  EXPECT_GT(asked_, 0);
  EXPECT_EQ(CounterTotal(Counter::kDnsblLedgerHits) - hits, uint64_t(asked_));
}

TEST_F(FallbackTest, MissesAreRememberedAndLookupsBounded) {
  Connect(3);
  uint64_t misses = CounterTotal(Counter::kDnsblLedgerMisses);
  uint64_t limited = CounterTotal(Counter::kDnsblLedgerLimited);
  auto unknown = Ip("192.0.2.1");
  EXPECT_FALSE(ListedAfterLookup(unknown, now_));
  EXPECT_EQ(asked_, 1);  // the second from the negative cache
  EXPECT_EQ(CounterTotal(Counter::kDnsblLedgerMisses) - misses, 1u);
  // Two more this second, then the bound: answered from memory only.
  for (int i = 2; i < 10; ++i) {
    index_.Lookup(Ip("192.0.2." + std::to_string(i)), now_);
  }
  ASSERT_TRUE(index_.WaitIdle(10));
  EXPECT_EQ(asked_, 3);
  EXPECT_EQ(CounterTotal(Counter::kDnsblLedgerLimited) - limited, 6u);
  // A forgotten listed source in the next second is found again.
  auto forgotten = Ip("10.0.0.0");                               // the oldest
  EXPECT_FALSE(index_.Lookup(forgotten, now_ + 1).has_value());  // at once
  ASSERT_TRUE(index_.WaitIdle(10));
  EXPECT_EQ(asked_, 4);
  // And is held now: no second question.
  EXPECT_TRUE(index_.Lookup(forgotten, now_ + 1).has_value());
  EXPECT_EQ(asked_, 4);
  // The negative entry expires.
  EXPECT_FALSE(ListedAfterLookup(unknown, now_ + 61));
  EXPECT_EQ(asked_, 5);
}

// A store that does not answer (a stalled PostgreSQL) delays the listing
// of a forgotten source, never the answer: Lookup returns while the
// look-up is still blocked. With the look-up on the caller's thread this
// test fails (Lookup waits out the store's 10 s and returns the entry).
TEST_F(FallbackTest, ASlowStoreDoesNotStallAnswers) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> done = false;
  index_.SetFallback(
      [&](const base::IpAddress& key) -> base::Result<std::optional<Entry>> {
        released.wait_for(std::chrono::seconds(10));
        auto r = ledger_->Source(key);
        done = true;
        if (!r.ok() || !r->has_value()) return std::optional<Entry>();
        return std::optional<Entry>(EntryOf(**r));
      },
      100, 60);
  auto forgotten = Ip("10.0.0.0");
  EXPECT_FALSE(index_.Lookup(forgotten, now_).has_value());
  EXPECT_FALSE(done);  // answered before the store did
  // Other queries are answered meanwhile, from memory.
  EXPECT_TRUE(index_.Lookup(Ip("10.0.7.249"), now_).has_value());
  EXPECT_FALSE(index_.Lookup(forgotten, now_).has_value());  // not re-asked
  release.set_value();
  ASSERT_TRUE(index_.WaitIdle(10));
  EXPECT_TRUE(done);
  EXPECT_TRUE(index_.Lookup(forgotten, now_).has_value());
}

TEST_F(FallbackTest, StoreErrorsAreCountedAndNotRemembered) {
  uint64_t errors = CounterTotal(Counter::kDnsblLedgerErrors);
  index_.SetFallback(
      [&](const base::IpAddress&) -> base::Result<std::optional<Entry>> {
        ++asked_;
        return base::Status::Error("store down");
      },
      100, 60);
  EXPECT_FALSE(ListedAfterLookup(Ip("10.0.0.0"), now_));
  ASSERT_TRUE(index_.WaitIdle(10));
  EXPECT_EQ(CounterTotal(Counter::kDnsblLedgerErrors) - errors, 2u);
  EXPECT_EQ(asked_, 2);  // an error is asked again, unlike a miss
}

TEST(Index, ACompleteIndexNeverAsks) {
  Index index(1000);
  std::atomic<int> asked = 0;
  index.SetFallback(
      [&](const base::IpAddress&) -> base::Result<std::optional<Entry>> {
        ++asked;
        return std::optional<Entry>();
      },
      100, 60);
  index.Update(Session("192.0.2.1", 1, 10));
  EXPECT_FALSE(index.Lookup(Ip("192.0.2.2"), 1.7e9).has_value());
  ASSERT_TRUE(index.WaitIdle(10));
  EXPECT_EQ(asked, 0);
  index.MarkIncomplete();
  EXPECT_FALSE(index.Lookup(Ip("192.0.2.2"), 1.7e9).has_value());
  ASSERT_TRUE(index.WaitIdle(10));
  EXPECT_EQ(asked, 1);
}

}  // namespace
}  // namespace dnsbl
