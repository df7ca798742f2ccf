#include "peer/cache.h"

#include <algorithm>
#include <limits>

#include "base/metrics.h"

namespace peer {
namespace {

// How much a history says about its sender: what the tarpit's reputation
// reads, each session counting at least once.
double Weight(const History& h) {
  return 1.0 + double(h.messages) + double(h.early_talker) + double(h.bare_lf) +
         double(h.protocol_errors) + 0.25 * double(h.connections);
}

}  // namespace

Cache::Cache(size_t budget_bytes, int ipv6_prefix)
    : ipv6_prefix_(ipv6_prefix),
      budget_bytes_(budget_bytes),
      per_shard_(std::max<size_t>(1, budget_bytes / kEntryBytes / kShards)) {
  base::g_peer_cache_budget_bytes.fetch_add(int64_t(budget_bytes_));
}

Cache::~Cache() {
  base::g_peer_cache_budget_bytes.fetch_sub(int64_t(budget_bytes_));
  Account(-int64_t(size()));
}

void Cache::Account(int64_t n) {
  base::g_peer_cache_bytes.fetch_add(n * int64_t(kEntryBytes),
                                     std::memory_order_relaxed);
}

History Cache::Lookup(const base::IpAddress& client) {
  const base::IpAddress ip = base::PrefixKey(client, ipv6_prefix_);
  Shard& s = ShardOf(ip);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(ip);
  if (it == s.map.end()) return History{};
  it->second.last_use = ++s.uses;
  return it->second.history;
}

void Cache::EvictOne(Shard& s) {
  if (s.map.empty()) return;
  // A random bucket, then the next entries in bucket order: a sample in
  // O(kSample) without any per-entry list.
  s.rng ^= s.rng << 13;
  s.rng ^= s.rng >> 7;
  s.rng ^= s.rng << 17;
  size_t buckets = s.map.bucket_count();
  size_t b = s.rng % buckets;
  auto victim = s.map.end();
  double worst = std::numeric_limits<double>::infinity();
  int seen = 0;
  // Age is measured in uses of this shard: an entry untouched while the
  // shard turned over four times counts half.
  const double horizon = 4.0 * double(per_shard_);
  for (size_t i = 0; i < buckets && seen < kSample; ++i) {
    size_t bucket = (b + i) % buckets;
    for (auto it = s.map.begin(bucket); it != s.map.end(bucket); ++it) {
      double age = double(s.uses - it->second.last_use);
      double score = Weight(it->second.history) / (1.0 + age / horizon);
      if (score < worst) {
        worst = score;
        victim = s.map.find(it->first);
      }
      if (++seen >= kSample) break;
    }
  }
  if (victim == s.map.end()) victim = s.map.begin();
  s.map.erase(victim);
  s.evictions++;
  Account(-1);
  base::Count(base::Counter::kPeerCacheEvictions);
}

void Cache::Update(const SessionSummary& r) {
  const base::IpAddress ip = base::PrefixKey(r.client, ipv6_prefix_);
  Shard& s = ShardOf(ip);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(ip);
  if (it == s.map.end()) {
    if (s.map.size() >= per_shard_) EvictOne(s);
    it = s.map.emplace(ip, Entry{}).first;
    Account(1);
  }
  Merge(&it->second.history, r);
  it->second.last_use = ++s.uses;
}

bool Cache::Seed(const base::IpAddress& source, const History& h) {
  const base::IpAddress ip = base::PrefixKey(source, ipv6_prefix_);
  Shard& s = ShardOf(ip);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(ip);
  if (it == s.map.end()) {
    if (s.map.size() >= per_shard_) return false;
    it = s.map.emplace(ip, Entry{}).first;
    Account(1);
  }
  // Raised, never lowered: a refresh from the fleet's ledger (which holds
  // this process's committed sessions too) must not forget the sessions it
  // has not committed yet, nor count the committed ones twice.
  History& cur = it->second.history;
  cur.connections = std::max(cur.connections, h.connections);
  cur.messages = std::max(cur.messages, h.messages);
  cur.early_talker = std::max(cur.early_talker, h.early_talker);
  cur.bare_lf = std::max(cur.bare_lf, h.bare_lf);
  cur.protocol_errors = std::max(cur.protocol_errors, h.protocol_errors);
  cur.seconds_held = std::max(cur.seconds_held, h.seconds_held);
  return true;
}

size_t Cache::size() {
  size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.map.size();
  }
  return n;
}

uint64_t Cache::evictions() {
  uint64_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.evictions;
  }
  return n;
}

}  // namespace peer
