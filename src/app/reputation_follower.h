// The fleet-wide reputation follower of a sink on the shared ledger.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "ledger/ledger.h"
#include "net/server.h"

namespace app {

// Fleet-wide reputation (the shared PostgreSQL ledger): every
// kReputationRefresh seconds the sources any sink recorded lately (last
// seen within kReputationLookback plus two flushes) raise this sink's peer
// history (Cache::Seed: raised, never lowered or added), so a sender met at
// one sink meets the tarpit at every other within about one writer flush
// plus one refresh. A record committed later than the lookback after its
// last session (a sink's backlog after a database outage) is not followed.
class ReputationFollower {
 public:
  static constexpr double kReputationRefresh = 2;
  static constexpr double kReputationLookback = 10;

  ReputationFollower(ledger::Ledger* ledger, net::Server* server)
      : ledger_(ledger), server_(server) {}
  ~ReputationFollower() { Stop(); }
  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop();

  ledger::Ledger* ledger_;
  net::Server* server_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace app
