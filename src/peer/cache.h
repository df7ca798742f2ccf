// What this process knows of each client IP, for the tarpit's reputation:
// read once when a session starts, merged once when it ends, seeded from
// the ledger at start. In memory only (the ledger is the durable record), so
// the SMTP path never waits for disk.
//
// Bounded by bytes: each address costs about kEntryBytes (the map node, its
// bucket and the allocator's overhead), and the cache never holds more than
// its budget allows. A new address arriving at the budget replaces the
// least valuable of a few sampled entries: the least evidence (messages,
// early talking, bare LFs, protocol errors, connections), discounted by how
// long ago it was last seen, so the worst senders stay known while one-off
// addresses (an IPv6 rotation) come and go. The seed stops when the budget
// is full. The use and the budget are published as base::g_peer_cache_bytes
// and g_peer_cache_budget_bytes; evictions count kPeerCacheEvictions.
//
// Threading: every method is safe from any thread (sharded mutexes, touched
// twice per session, never per command).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "base/ip.h"
#include "peer/history.h"

namespace peer {

class Cache {
 public:
  struct Entry {
    History history;
    uint64_t last_use = 0;  // the shard's use count when last touched
  };
  // Estimated bytes per address: the node (key, entry, next pointer and
  // cached hash), its bucket pointer and malloc's header, rounded up.
  static constexpr size_t kEntryBytes =
      (sizeof(base::IpAddress) + sizeof(Entry) + 2 * sizeof(void*) + 8 + 16 +
       15) /
      16 * 16;
  static constexpr size_t kDefaultBudgetBytes = size_t(64) << 20;

  // ipv6_prefix: IPv6 clients are known per network of this many bits
  // (base::PrefixKey; the ledger's ledger.ipv6_prefix), so an address
  // rotated within one /64 inherits the /64's history.
  explicit Cache(size_t budget_bytes = kDefaultBudgetBytes,
                 int ipv6_prefix = 128);
  ~Cache();
  History Lookup(const base::IpAddress& client);
  void Update(const SessionSummary& s);
  // Adds what the ledger knows (at start, and from the fleet's shared
  // ledger since): each counter is raised to h's if lower, never lowered,
  // so seeding again with a newer record of the same address neither
  // loses nor double-counts. False when the budget is full and ip was not
  // known: the caller stops seeding (it seeds the most recent senders
  // first).
  bool Seed(const base::IpAddress& ip, const History& h);
  size_t size();
  size_t capacity() const { return per_shard_ * kShards; }
  uint64_t evictions();

 private:
  static constexpr size_t kShards = 16;
  static constexpr int kSample = 8;
  struct Shard {
    std::mutex mu;
    std::unordered_map<base::IpAddress, Entry> map;
    uint64_t uses = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    uint64_t evictions = 0;
  };
  Shard& ShardOf(const base::IpAddress& ip) {
    return shards_[std::hash<base::IpAddress>()(ip) % kShards];
  }
  // Removes the least valuable of up to kSample entries. REQUIRES: s.mu.
  void EvictOne(Shard& s);
  // Publishes a change of n entries to the byte gauge.
  static void Account(int64_t n);

  const int ipv6_prefix_;
  size_t budget_bytes_;
  size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace peer
