#include "dnsbl/listing.h"

#include <algorithm>

#include "ledger/query.h"
#include "ledger/source.h"

namespace dnsbl {

void Index::Update(const peer::SessionSummary& s) {
  const base::IpAddress key = ledger::SourceKey(s.client, ipv6_prefix_);
  Shard& sh = ShardOf(key);
  std::lock_guard lock(sh.mu);
  auto it = sh.map.find(key);
  if (it == sh.map.end()) {
    MakeRoom(&sh);
    it = sh.map.emplace(key, Entry{}).first;
    it->second.first_seen = s.start_wall;
  }
  Entry& e = it->second;
  e.first_seen = std::min(e.first_seen, s.start_wall);
  e.last_seen = std::max(e.last_seen, s.end_wall);
  e.connections += 1;
  e.messages += s.messages;
  e.tarpitted += s.tarpitted ? 1 : 0;
  using ledger::Evidence;
  if (s.early_talker) e.evidence |= uint32_t(Evidence::kEarlyTalker);
  if (s.pipelined_without_ehlo) e.evidence |= uint32_t(Evidence::kPipelining);
  if (s.bare_lf) e.evidence |= uint32_t(Evidence::kBareLf);
  if (s.bare_cr) e.evidence |= uint32_t(Evidence::kBareCr);
}

Entry EntryOf(const ledger::SourceRecord& r) {
  Entry e;
  e.first_seen = r.first_seen;
  e.last_seen = r.last_seen;
  e.connections = r.connections;
  e.messages = r.messages;
  e.tarpitted = r.tarpitted_sessions;
  e.evidence = r.EvidenceMask();
  return e;
}

void Index::Seed(const ledger::SourceRecord& r) {
  const base::IpAddress key = ledger::SourceKey(r.ip, ipv6_prefix_);
  Shard& sh = ShardOf(key);
  std::lock_guard lock(sh.mu);
  if (!sh.map.contains(key)) MakeRoom(&sh);
  sh.map[key] = EntryOf(r);
}

void Index::SetFallback(Fallback f, int max_per_second,
                        double negative_seconds) {
  std::lock_guard lock(fallback_mu_);
  fallback_ = std::move(f);
  max_per_second_ = max_per_second;
  negative_seconds_ = negative_seconds;
}

std::optional<Entry> Index::AskFallback(const base::IpAddress& key,
                                        double now) {
  std::lock_guard lock(fallback_mu_);
  if (!fallback_) return std::nullopt;
  if (auto n = negative_.find(key); n != negative_.end()) {
    if (n->second > now) return std::nullopt;
    negative_.erase(n);
  }
  if (now >= second_ + 1 || now < second_) {
    second_ = now;
    asked_ = 0;
  }
  if (asked_ >= max_per_second_) return std::nullopt;
  ++asked_;
  std::optional<Entry> e = fallback_(key);
  if (!e) {
    if (negative_.size() >= kMaxNegative) negative_.clear();
    negative_[key] = now + negative_seconds_;
    return std::nullopt;
  }
  // Held again, so the next query for it is answered from memory.
  Shard& sh = ShardOf(key);
  std::lock_guard shard_lock(sh.mu);
  if (!sh.map.contains(key)) MakeRoom(&sh);
  sh.map[key] = *e;
  return e;
}

void Index::MakeRoom(Shard* s) {
  if (s->map.size() < per_shard_) return;
  // Drop the oldest-seen half: the listing window favours recent senders.
  std::vector<double> seen;
  seen.reserve(s->map.size());
  for (const auto& [ip, e] : s->map) seen.push_back(e.last_seen);
  auto mid = seen.begin() + seen.size() / 2;
  std::nth_element(seen.begin(), mid, seen.end());
  double cut = *mid;
  std::erase_if(s->map,
                [cut](const auto& kv) { return kv.second.last_seen <= cut; });
  incomplete_ = true;
}

std::optional<Entry> Index::Lookup(const base::IpAddress& ip, double now) {
  const base::IpAddress key = ledger::SourceKey(ip, ipv6_prefix_);
  {
    Shard& sh = ShardOf(key);
    std::lock_guard lock(sh.mu);
    auto it = sh.map.find(key);
    if (it != sh.map.end()) return it->second;
  }
  // A miss is the answer while the index holds everything it was given.
  if (!incomplete_) return std::nullopt;
  return AskFallback(key, now);
}

size_t Index::size() {
  size_t n = 0;
  for (auto& sh : shards_) {
    std::lock_guard lock(sh.mu);
    n += sh.map.size();
  }
  return n;
}

std::optional<Listing> Decide(const Options& o,
                              const std::vector<base::Cidr>& allow,
                              const base::IpAddress& ip,
                              const std::optional<Entry>& e, double now) {
  if (ip.is_v4() && ip.v4() == 0x7f000002) {
    return Listing{{kCodeSeen}, "spamsink: RFC 5782 test point"};
  }
  if (ip.is_v4() && ip.v4() == 0x7f000001) return std::nullopt;
  if (!e) return std::nullopt;
  for (const auto& c : allow) {
    if (c.Contains(ip)) return std::nullopt;
  }
  if (o.window_seconds > 0 && e->last_seen < now - o.window_seconds) {
    return std::nullopt;
  }
  Listing l;
  std::string why;
  if ((o.min_messages > 0 && e->messages >= uint64_t(o.min_messages)) ||
      (o.min_connections > 0 &&
       e->connections >= uint64_t(o.min_connections))) {
    l.codes.push_back(kCodeSeen);
    why = "seen sending: " + std::to_string(e->messages) + " messages in " +
          std::to_string(e->connections) + " connections";
  }
  if (o.list_bot_evidence && (e->evidence & kBotEvidence)) {
    l.codes.push_back(kCodeBot);
    std::string names;
    const auto& all = ledger::EvidenceNames();
    for (size_t i = 0; i < all.size(); ++i) {
      if (e->evidence & kBotEvidence & (1u << i)) {
        names += (names.empty() ? "" : ",") + std::string(all[i]);
      }
    }
    why += (why.empty() ? "" : "; ") + std::string("bot evidence: ") + names;
  }
  if (o.list_tarpitted && e->tarpitted > 0) {
    l.codes.push_back(kCodeTarpit);
    why += (why.empty() ? "" : "; ") + std::string("tarpitted ") +
           std::to_string(e->tarpitted) + " sessions";
  }
  if (l.codes.empty()) return std::nullopt;
  l.txt = "spamsink: " + why + "; first seen " +
          ledger::FormatTime(e->first_seen) + ", last seen " +
          ledger::FormatTime(e->last_seen);
  return l;
}

}  // namespace dnsbl
