#include "dnsbl/listing.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "base/metrics.h"
#include "ledger/query.h"
#include "ledger/source.h"

namespace dnsbl {

namespace {

uint32_t Seconds(double t) {
  if (!(t > 0)) return 0;
  if (t >= 4294967295.0) return UINT32_MAX;
  return uint32_t(t);
}
template <typename T>
T Saturated(uint64_t v) {
  return v > std::numeric_limits<T>::max() ? std::numeric_limits<T>::max()
                                           : T(v);
}
template <typename T>
void Add(T* v, uint64_t n) {
  *v = Saturated<T>(uint64_t(*v) + n);
}
V6Key V6Of(const base::IpAddress& ip) {
  V6Key k;
  for (int i = 0; i < 8; ++i) k.hi = (k.hi << 8) | ip.bytes()[i];
  for (int i = 8; i < 16; ++i) k.lo = (k.lo << 8) | ip.bytes()[i];
  return k;
}

}  // namespace

Facts Pack(const Entry& e) {
  Facts f;
  f.first_seen = Seconds(e.first_seen);
  f.last_seen = Seconds(e.last_seen);
  f.messages = Saturated<uint32_t>(e.messages);
  f.connections = Saturated<uint32_t>(e.connections);
  f.tarpitted = Saturated<uint16_t>(e.tarpitted);
  f.evidence = uint16_t(e.evidence);
  return f;
}

Entry Unpack(const Facts& f) {
  Entry e;
  e.first_seen = f.first_seen;
  e.last_seen = f.last_seen;
  e.messages = f.messages;
  e.connections = f.connections;
  e.tarpitted = f.tarpitted;
  e.evidence = f.evidence;
  return e;
}

Index::Shard& Index::ShardOf(const base::IpAddress& key) {
  size_t h = key.is_v4() ? HashKey(key.v4()) : HashKey(V6Of(key));
  // The tables use the hash's low bits; the shard takes high ones.
  return shards_[(h >> 20) % kShards];
}

Facts* Index::Find(Shard* s, const base::IpAddress& key) {
  return key.is_v4() ? s->v4.Find(key.v4()) : s->v6.Find(V6Of(key));
}

Facts* Index::Slot(Shard* s, const base::IpAddress& key) {
  if (Facts* f = Find(s, key)) return f;
  MakeRoom(s);
  return key.is_v4() ? s->v4.Insert(key.v4()) : s->v6.Insert(V6Of(key));
}

void Index::Update(const peer::SessionSummary& s) {
  const base::IpAddress key = ledger::SourceKey(s.client, ipv6_prefix_);
  Shard& sh = ShardOf(key);
  std::lock_guard lock(sh.mu);
  Facts* f = Find(&sh, key);
  if (!f) {
    f = Slot(&sh, key);
    f->first_seen = Seconds(s.start_wall);
  }
  f->first_seen = std::min(f->first_seen, Seconds(s.start_wall));
  f->last_seen = std::max(f->last_seen, Seconds(s.end_wall));
  Add(&f->connections, 1);
  Add(&f->messages, s.messages);
  Add(&f->tarpitted, s.tarpitted ? 1 : 0);
  using ledger::Evidence;
  if (s.early_talker) f->evidence |= uint16_t(Evidence::kEarlyTalker);
  if (s.pipelined_without_ehlo) f->evidence |= uint16_t(Evidence::kPipelining);
  if (s.bare_lf) f->evidence |= uint16_t(Evidence::kBareLf);
  if (s.bare_cr) f->evidence |= uint16_t(Evidence::kBareCr);
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
  *Slot(&sh, key) = Pack(EntryOf(r));
}

void Index::SetFallback(Fallback f, int max_per_second,
                        double negative_seconds) {
  std::lock_guard lock(fallback_mu_);
  fallback_ = std::move(f);
  max_per_second_ = max_per_second;
  negative_seconds_ = negative_seconds;
  if (!thread_.joinable()) thread_ = std::thread([this] { RunLookups(); });
}

void Index::StopLookups() {
  {
    std::lock_guard lock(fallback_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Index::AskFallback(const base::IpAddress& key, double now) {
  std::lock_guard lock(fallback_mu_);
  if (!fallback_ || stopping_ || pending_.contains(key)) return;
  if (auto n = negative_.find(key); n != negative_.end()) {
    if (n->second > now) return;
    negative_.erase(n);
  }
  if (now >= second_ + 1 || now < second_) {
    second_ = now;
    asked_ = 0;
  }
  if (asked_ >= max_per_second_ || queue_.size() >= kMaxQueued) {
    base::Count(base::Counter::kDnsblLedgerLimited);
    return;
  }
  ++asked_;
  queue_.push_back(Ask{key, now});
  pending_.insert(key);
  wake_.notify_one();
}

void Index::RunLookups() {
  std::unique_lock lock(fallback_mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Ask ask = queue_.front();
    queue_.pop_front();
    Fallback f = fallback_;
    lock.unlock();
    base::Result<std::optional<Entry>> r = f(ask.key);
    if (r.ok() && r->has_value()) {
      // Held again, so the next query for it is answered from memory.
      Shard& sh = ShardOf(ask.key);
      std::lock_guard shard_lock(sh.mu);
      *Slot(&sh, ask.key) = Pack(**r);
    }
    lock.lock();
    pending_.erase(ask.key);
    if (!r.ok()) {
      // Not remembered: asked again by a later query (within the bound).
      base::Count(base::Counter::kDnsblLedgerErrors);
    } else if (!r->has_value()) {
      base::Count(base::Counter::kDnsblLedgerMisses);
      if (negative_.size() >= kMaxNegative) negative_.clear();
      negative_[ask.key] = ask.now + negative_seconds_;
    } else {
      base::Count(base::Counter::kDnsblLedgerHits);
    }
    if (pending_.empty()) idle_.notify_all();
  }
}

bool Index::WaitIdle(double timeout_seconds) {
  std::unique_lock lock(fallback_mu_);
  return idle_.wait_for(lock, std::chrono::duration<double>(timeout_seconds),
                        [&] { return pending_.empty(); });
}

void Index::MakeRoom(Shard* s) {
  if (s->size() < per_shard_) return;
  // Drop the oldest-seen half: the listing window favours recent senders.
  std::vector<uint32_t> seen;
  seen.reserve(s->size());
  auto collect = [&](const Facts& f) { seen.push_back(f.last_seen); };
  s->v4.ForEach(collect);
  s->v6.ForEach(collect);
  auto mid = seen.begin() + seen.size() / 2;
  std::nth_element(seen.begin(), mid, seen.end());
  uint32_t cut = *mid;
  auto old = [cut](const Facts& f) { return f.last_seen <= cut; };
  s->v4.EraseIf(old);
  s->v6.EraseIf(old);
  incomplete_ = true;
}

std::optional<Entry> Index::Lookup(const base::IpAddress& ip, double now) {
  const base::IpAddress key = ledger::SourceKey(ip, ipv6_prefix_);
  {
    Shard& sh = ShardOf(key);
    std::lock_guard lock(sh.mu);
    if (Facts* f = Find(&sh, key)) return Unpack(*f);
  }
  // A miss is the answer while the index holds everything it was given.
  // Otherwise too, for now: the ledger is asked off this thread.
  if (incomplete_) AskFallback(key, now);
  return std::nullopt;
}

size_t Index::size() {
  size_t n = 0;
  for (auto& sh : shards_) {
    std::lock_guard lock(sh.mu);
    n += sh.size();
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
