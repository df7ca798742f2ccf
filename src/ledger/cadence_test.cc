// The writer's cadence (issue 13, item 7): a kill -9 loses about one
// flush interval of records whatever the commit time, driven with a
// FakeClock and a store whose commit takes a set time.
#include "ledger/cadence.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "ledger/ledger.h"
#include "ledger/test_util.h"

namespace ledger {
namespace {

using testing::Session;
using Seconds = std::chrono::duration<double>;

base::Duration D(double seconds) {
  return std::chrono::duration_cast<base::Duration>(Seconds(seconds));
}

// A memory store whose Apply takes commit_seconds of the fake clock, and
// notes the exposure of every record it commits: how long after its session
// ended it became durable (what a kill -9 just before would have lost).
class SlowStore final : public Store {
 public:
  SlowStore(base::FakeClock* clock, double commit_seconds)
      : clock_(clock), commit_(commit_seconds), base_(NewMemoryStore()) {}
  base::Status Apply(const std::vector<SourceRecord>& deltas) override {
    clock_->Advance(D(commit_));
    for (const auto& r : deltas) {
      max_exposure_ =
          std::max(max_exposure_, clock_->WallSeconds() - r.last_seen);
    }
    committed_ += deltas.size();
    return base_->Apply(deltas);
  }
  base::Result<uint64_t> Expire(double cutoff) override {
    return base_->Expire(cutoff);
  }
  base::Result<std::optional<SourceRecord>> Get(
      const base::IpAddress& ip) override {
    return base_->Get(ip);
  }
  base::Result<SourcePage> Query(const SourceQuery& q) override {
    return base_->Query(q);
  }
  base::Result<Totals> GetTotals() override { return base_->GetTotals(); }

  double max_exposure() const { return max_exposure_; }
  uint64_t committed() const { return committed_; }

 private:
  base::FakeClock* clock_;
  double commit_;
  std::unique_ptr<Store> base_;
  double max_exposure_ = 0;
  uint64_t committed_ = 0;
};

struct Outcome {
  double max_exposure = 0;
  uint64_t committed = 0;
  int steps = 0;
};

// 30 s of one session every 10 ms from distinct addresses (sessions that
// end while a commit runs are recorded when it returns, with their own end
// times: they go into the next batch, as they would). The writer's steps
// run when the fake clock reaches the time WriterStep asked for.
Outcome Simulate(double interval, double commit) {
  constexpr double kTick = 0.01;
  base::FakeClock clock;
  auto owned = std::make_unique<SlowStore>(&clock, commit);
  SlowStore* store = owned.get();
  Options c;
  c.flush_interval = interval;
  c.retention_days = 0;
  auto l = Ledger::Create(std::move(owned), c, &clock, false);
  base::SteadyTime next = FirstCut(clock.Now(), D(interval));
  double recorded_until = clock.WallSeconds();
  int n = 0;
  Outcome run;
  for (int i = 0; i < 3000; ++i) {
    clock.Advance(D(kTick));
    while (recorded_until + kTick <= clock.WallSeconds() + 1e-6 && n < 60000) {
      recorded_until += kTick;
      std::string ip = "10." + std::to_string(n / 65536 % 256) + "." +
                       std::to_string(n / 256 % 256) + "." +
                       std::to_string(n % 256);
      l->Record(Session(ip, 1, 10, recorded_until, 0.5));
      ++n;
    }
    if (clock.Now() >= next) {
      next = l->WriterStep();
      run.steps++;
    }
  }
  run.max_exposure = store->max_exposure();
  run.committed = store->committed();
  return run;
}

TEST(WriterCadence, NextCutAccountsForTheCommitTime) {
  base::SteadyTime t0{};
  // A quick commit: one interval after the last cut.
  EXPECT_EQ(NextCut(t0, D(0), t0, D(1)), t0 + D(1));
  // A 0.3 s commit: 0.7 s after the cut, so the next batch is durable one
  // interval after the last cut.
  EXPECT_EQ(NextCut(t0, D(0.3), t0 + D(0.3), D(1)), t0 + D(0.7));
  // Commits longer than half an interval: back to back.
  EXPECT_EQ(NextCut(t0, D(0.8), t0 + D(0.8), D(1)), t0 + D(0.8));
  // Expiry after the commit delays the cut, never brings it earlier.
  EXPECT_EQ(NextCut(t0, D(0.1), t0 + D(0.95), D(1)), t0 + D(0.95));
}

// Before: the writer waited an interval after each commit ended, so a
// record could wait interval + 2 x commit (1.6 s at a 0.3 s commit, 2.6 s
// at 0.8 s: crash_bench's 2.33 intervals).
TEST(WriterCadence, RecordsAreDurableWithinOneIntervalWhileCommitsAreShort) {
  for (double commit : {0.0, 0.1, 0.3, 0.45}) {
    Outcome run = Simulate(1.0, commit);
    SCOPED_TRACE("commit " + std::to_string(commit));
    EXPECT_GT(run.committed, 2500u);
    // Bounded by one interval plus the simulation's 10 ms tick (and rounding).
    EXPECT_LE(run.max_exposure, 1.0 + 0.02);
    EXPECT_GE(run.max_exposure, 1.0 - 0.011 - commit);
  }
}

TEST(WriterCadence, SlowCommitsGoBackToBackWithinTwoCommitTimes) {
  for (double commit : {0.6, 0.8, 1.5}) {
    Outcome run = Simulate(1.0, commit);
    SCOPED_TRACE("commit " + std::to_string(commit));
    EXPECT_GT(run.committed, 2000u);
    EXPECT_LE(run.max_exposure, 2 * commit + 0.02);
    // Back to back: about one step per commit time.
    EXPECT_GE(run.steps, int(30 / commit) - 2);
  }
}

}  // namespace
}  // namespace ledger
