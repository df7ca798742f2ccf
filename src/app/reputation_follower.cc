#include "app/reputation_follower.h"

#include <algorithm>
#include <chrono>

#include "base/clock.h"
#include "base/log.h"

namespace app {

void ReputationFollower::Loop() {
  const double lookback = kReputationLookback + 2 * ledger_->flush_interval();
  auto wall = [] { return base::SystemClock::Get().WallSeconds(); };
  double since = wall() - lookback;
  std::unique_lock lk(mu_);
  while (!cv_.wait_for(lk, std::chrono::duration<double>(kReputationRefresh),
                       [&] { return stop_; })) {
    lk.unlock();
    double start = wall();
    ledger::SourceQuery q;
    q.since = since;
    q.sort = ledger::SortKey::kLastSeen;
    q.limit = 0;
    uint64_t seeded = 0;
    double newest = 0;
    auto s = ledger_->ScanSources(q, [&](const ledger::SourceRecord& r) {
      server_->SeedHistory(r.ip, r);
      ++seeded;
      newest = std::max(newest, r.last_seen);
      return base::Status();
    });
    if (s.ok()) {
      since = start - lookback;
      if (seeded != 0) {
        base::LogLine(base::LogLevel::kDebug, "reputation_pulled")
            .Kv("sources", seeded)
            .Kv("newest_last_seen", newest)
            .Kv("pulled_at", start);
      }
    } else {
      base::LogLine(base::LogLevel::kWarning, "reputation_pull_failed")
          .Kv("error", s.message());
    }
    lk.lock();
  }
}

}  // namespace app
