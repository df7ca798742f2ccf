// What this process has seen of each client IP since it started, for the
// tarpit's reputation scaling: read once when a session starts, updated
// once when it ends. In memory only (the ledger is the durable record), so
// the SMTP path never waits for disk. Bounded: each shard holds at most
// max_entries / kShards addresses and is cleared when it overflows.
#pragma once

#include <array>
#include <mutex>
#include <unordered_map>

#include "base/ip.h"
#include "smtp/session_record.h"
#include "tarpit/policy.h"

namespace net {

class PeerMemory {
 public:
  explicit PeerMemory(size_t max_entries = 1 << 20)
      : per_shard_(max_entries / kShards + 1) {}
  tarpit::PeerHistory Lookup(const base::IpAddress& ip);
  void Update(const smtp::SessionRecord& r);
  // Sets what was known before this process started (the ledger).
  void Seed(const base::IpAddress& ip, const tarpit::PeerHistory& h);
  size_t size();

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<base::IpAddress, tarpit::PeerHistory> map;
  };
  Shard& ShardOf(const base::IpAddress& ip) {
    return shards_[std::hash<base::IpAddress>()(ip) % kShards];
  }
  size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace net
