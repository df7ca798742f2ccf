// The fleet-wide reputation follower of a sink on the shared ledger.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "ledger/postgres_store.h"

namespace ledger {

// Fleet-wide reputation (the shared PostgreSQL ledger): every
// refresh_seconds (ledger.reputation_refresh) the records any sink changed
// since the previous pull (PostgresStore::Changes: each change once, none
// missed) go to seed (the peer history: Cache::Seed raises, never lowers
// or adds), so a sender met at one sink meets the tarpit at every other
// within about one writer flush plus one refresh. A backlog a sink commits
// late (after a database outage) is followed when it commits.
class ChangeFollower {
 public:
  using Seed = std::function<void(const SourceRecord&)>;
  // Waits seconds, or less when stopped; false once stopped. The default
  // waits on a condition variable that Stop signals; tests drive the loop
  // through their own.
  using Wait = std::function<bool(double seconds)>;

  ChangeFollower(PostgresStore* store, double refresh_seconds, Seed seed,
                 Wait wait = nullptr);
  ~ChangeFollower() { Stop(); }

  // Takes the starting cursor: what commits from now on is followed. Call
  // it before reading the start-up history, so nothing falls between the
  // two. Failing (database unreachable), the first Tick takes it instead.
  base::Status Begin();
  // Runs Loop on a thread of its own.
  void Start();
  void Stop();
  // Waits refresh_seconds then pulls (Tick), until Wait says stop.
  void Loop();
  // One pull: seeds each record changed since the cursor, then moves it.
  // On error the cursor stays, and the next pull reads those changes.
  base::Status Tick();
  // Records seeded since construction.
  uint64_t seeded() const;

 private:
  PostgresStore* store_;
  double refresh_;
  Seed seed_;
  Wait wait_;
  std::string cursor_;  // Loop's thread only (and Begin before Start)
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t seeded_ = 0;
  std::thread thread_;
};

}  // namespace ledger
