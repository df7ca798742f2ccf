#include "net/peer_memory.h"

namespace net {

tarpit::PeerHistory PeerMemory::Lookup(const base::IpAddress& ip) {
  Shard& s = ShardOf(ip);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(ip);
  return it == s.map.end() ? tarpit::PeerHistory{} : it->second;
}

void PeerMemory::Update(const smtp::SessionRecord& r) {
  Shard& s = ShardOf(r.client);
  std::lock_guard lock(s.mu);
  if (s.map.size() >= per_shard_ && !s.map.count(r.client)) s.map.clear();
  auto& h = s.map[r.client];
  ++h.connections;
  h.messages += r.messages;
  h.early_talks += r.early_talker ? 1 : 0;
  h.bare_lf += r.bare_lf;
  h.protocol_errors += r.protocol_errors;
  h.seconds_held += r.duration_seconds;
}

void PeerMemory::Seed(const base::IpAddress& ip, const tarpit::PeerHistory& h) {
  Shard& s = ShardOf(ip);
  std::lock_guard lock(s.mu);
  if (s.map.size() >= per_shard_ && !s.map.count(ip)) return;
  s.map[ip] = h;
}

size_t PeerMemory::size() {
  size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.map.size();
  }
  return n;
}

}  // namespace net
