// What this process knows of each client IP, for the tarpit's reputation:
// read once when a session starts, merged once when it ends, seeded from
// the ledger at start. In memory only (the ledger is the durable record), so
// the SMTP path never waits for disk. Bounded: each shard holds at most
// max_entries / kShards addresses and is cleared when it overflows.
//
// Threading: every method is safe from any thread (sharded mutexes, touched
// twice per session, never per command).
#pragma once

#include <array>
#include <mutex>
#include <unordered_map>

#include "base/ip.h"
#include "peer/history.h"

namespace peer {

class Cache {
 public:
  explicit Cache(size_t max_entries = 1 << 20)
      : per_shard_(max_entries / kShards + 1) {}
  History Lookup(const base::IpAddress& ip);
  void Update(const SessionSummary& s);
  // Sets what was known before this process started (the ledger).
  void Seed(const base::IpAddress& ip, const History& h);
  size_t size();

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<base::IpAddress, History> map;
  };
  Shard& ShardOf(const base::IpAddress& ip) {
    return shards_[std::hash<base::IpAddress>()(ip) % kShards];
  }
  size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace peer
