#include "peer/cache.h"

namespace peer {

History Cache::Lookup(const base::IpAddress& ip) {
  Shard& s = ShardOf(ip);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(ip);
  return it == s.map.end() ? History{} : it->second;
}

void Cache::Update(const SessionSummary& r) {
  Shard& s = ShardOf(r.client);
  std::lock_guard lock(s.mu);
  if (s.map.size() >= per_shard_ && !s.map.count(r.client)) s.map.clear();
  Merge(&s.map[r.client], r);
}

void Cache::Seed(const base::IpAddress& ip, const History& h) {
  Shard& s = ShardOf(ip);
  std::lock_guard lock(s.mu);
  if (s.map.size() >= per_shard_ && !s.map.count(ip)) return;
  s.map[ip] = h;
}

size_t Cache::size() {
  size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.map.size();
  }
  return n;
}

}  // namespace peer
