// The fleet's change cursor (PostgresStore::Changes) and the reputation
// follower on it, against a private PostgreSQL cluster.
#include "ledger/change_follower.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

#include "ledger/pg_test_util.h"
#include "ledger/test_util.h"

namespace ledger {
namespace {

using testing::Ip;
using testing::PgCluster;

class ChangeFollowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = PgCluster::Shared();
    if (pg_ == nullptr) GTEST_SKIP() << "no PostgreSQL server installed";
    url_ = pg_->NewDatabase();
  }
  std::unique_ptr<PostgresStore> Open(const std::string& sink,
                                      std::function<void()> locked = nullptr) {
    PostgresOptions o;
    o.url = url_;
    o.password = PgCluster::kPassword;
    o.sink_id = sink;
    if (locked) {
      o.after_rows_locked = [locked = std::move(locked)](int, int) {
        locked();
      };
    }
    auto s = OpenPostgresStore(o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  PgCluster* pg_ = nullptr;
  std::string url_;
};

SourceRecord Delta(const std::string& ip, uint64_t messages) {
  SourceRecord r;
  r.ip = Ip(ip);
  r.first_seen = 100;
  r.last_seen = 200;
  r.connections = 1;
  r.messages = messages;
  return r;
}

// The addresses (with their messages) Changes visits from cursor; moves it.
std::map<std::string, uint64_t> Pull(PostgresStore* s, std::string* cursor) {
  std::map<std::string, uint64_t> seen;
  auto next = s->Changes(*cursor, [&](const SourceRecord& r) {
    EXPECT_TRUE(seen.emplace(r.ip.ToString(), r.messages).second)
        << r.ip.ToString() << " visited twice in one pull";
    return base::Status();
  });
  EXPECT_TRUE(next.ok()) << next.status().message();
  if (next.ok()) *cursor = *next;
  return seen;
}

TEST_F(ChangeFollowerTest, EachChangeIsSeenOnceAndNoneIsMissed) {
  auto b = Open("sink-b");
  ASSERT_TRUE(b);
  std::string cursor;
  bool b_committed = false;
  std::map<std::string, uint64_t> between;
  // Sink A's batch starts first (its transaction id is the older) and
  // commits last: while its rows are locked, B commits a batch and the
  // follower pulls. A cursor taken as "highest id or sequence seen" would
  // move past A's batch here and never read it.
  auto a = Open("sink-a", [&] {
    if (b_committed) return;
    b_committed = true;
    EXPECT_TRUE(b->Apply({Delta("192.0.2.2", 2)}).ok());
    between = Pull(b.get(), &cursor);
  });
  ASSERT_TRUE(a);
  EXPECT_TRUE(Pull(b.get(), &cursor).empty());  // the start: no history
  ASSERT_FALSE(cursor.empty());

  ASSERT_TRUE(a->Apply({Delta("192.0.2.1", 1), Delta("192.0.2.3", 3)}).ok());
  EXPECT_EQ(between, (std::map<std::string, uint64_t>{{"192.0.2.2", 2}}));
  EXPECT_EQ(Pull(b.get(), &cursor), (std::map<std::string, uint64_t>{
                                        {"192.0.2.1", 1}, {"192.0.2.3", 3}}));
  EXPECT_TRUE(Pull(b.get(), &cursor).empty());  // seen once

  // Two quick batches between pulls, one address in both: both changes
  // are in the next pull, the address once with its latest record.
  ASSERT_TRUE(a->Apply({Delta("192.0.2.1", 10)}).ok());
  ASSERT_TRUE(b->Apply({Delta("192.0.2.1", 100), Delta("192.0.2.4", 4)}).ok());
  EXPECT_EQ(Pull(a.get(), &cursor), (std::map<std::string, uint64_t>{
                                        {"192.0.2.1", 111}, {"192.0.2.4", 4}}));
  EXPECT_TRUE(Pull(a.get(), &cursor).empty());
}

TEST_F(ChangeFollowerTest, FollowerPullsAtItsIntervalAndSeedsEachChange) {
  auto a = Open("sink-a");
  auto b = Open("sink-b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Apply({Delta("192.0.2.9", 9)}).ok());  // before: history
  std::vector<std::string> seeded;
  std::vector<double> waits;
  // The test is the follower's clock: each wait is where time passes, and
  // what sink A commits in it is the next pull's.
  ChangeFollower f(
      b.get(), 0.75,
      [&](const SourceRecord& r) { seeded.push_back(r.ip.ToString()); },
      [&](double seconds) {
        waits.push_back(seconds);
        if (waits.size() == 1) {
          EXPECT_TRUE(a->Apply({Delta("192.0.2.10", 1)}).ok());
        } else if (waits.size() == 3) {
          EXPECT_TRUE(a->Apply({Delta("192.0.2.11", 1)}).ok());
          EXPECT_TRUE(a->Apply({Delta("192.0.2.10", 1)}).ok());
        }
        return waits.size() <= 4;
      });
  ASSERT_TRUE(f.Begin().ok());
  f.Loop();  // returns when the wait says stop (the 5th)
  EXPECT_EQ(waits, (std::vector<double>(5, 0.75)));
  std::multiset<std::string> got(seeded.begin(), seeded.end());
  EXPECT_EQ(got, (std::multiset<std::string>{"192.0.2.10", "192.0.2.10",
                                             "192.0.2.11"}));
  EXPECT_EQ(f.seeded(), 3u);
}

TEST_F(ChangeFollowerTest, AnUnreachableStoreKeepsTheCursorForTheNextPull) {
  auto b = Open("sink-b");
  ASSERT_TRUE(b);
  std::vector<std::string> seeded;
  ChangeFollower f(b.get(), 1, [&](const SourceRecord& r) {
    seeded.push_back(r.ip.ToString());
  });
  ASSERT_TRUE(f.Begin().ok());
  auto a = Open("sink-a");
  ASSERT_TRUE(a->Apply({Delta("192.0.2.20", 1)}).ok());
  pg_->Stop();
  EXPECT_FALSE(f.Tick().ok());
  ASSERT_TRUE(pg_->Start());
  ASSERT_TRUE(f.Tick().ok());
  EXPECT_EQ(seeded, (std::vector<std::string>{"192.0.2.20"}));
}

}  // namespace
}  // namespace ledger
