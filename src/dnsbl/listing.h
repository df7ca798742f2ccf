// What the DNSBL knows of each source and the listing policy over it.
//
// Index: per-IP facts in memory, seeded from the ledger at start and
// updated as each session ends (the same moment the ledger records it), so
// a sender seen a second ago is listed without waiting for a ledger commit.
// Compact (flat_table.h): 24 bytes a slot per IPv4 address, 40 per IPv6
// network, times in whole seconds.
// Bounded: each shard holds at most max_entries / kShards addresses; a full
// shard drops its oldest-seen half. Once it has forgotten a source (or was
// seeded short of the ledger), a miss asks the fallback (the ledger) on a
// thread of its own, at most max_per_second times a second, remembering
// misses for a while, so the listing stays complete. Thread-safe (sharded
// mutexes).
//
// Decide: the pure policy, an entry and the time in, the reason codes and
// the TXT text out.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/ip.h"
#include "base/status.h"
#include "dnsbl/flat_table.h"
#include "dnsbl/options.h"
#include "ledger/source.h"
#include "peer/summary.h"

namespace dnsbl {

// Reason codes: the last octet of the 127.0.0.x answer.
inline constexpr uint32_t kCodeSeen = 0x7f000002;    // seen sending
inline constexpr uint32_t kCodeBot = 0x7f000003;     // bot evidence
inline constexpr uint32_t kCodeTarpit = 0x7f000004;  // tarpitted
// The ledger evidence bits counted as bot evidence.
inline constexpr uint32_t kBotEvidence =
    uint32_t(ledger::Evidence::kEarlyTalker) |
    uint32_t(ledger::Evidence::kPipelining) |
    uint32_t(ledger::Evidence::kBareLf) | uint32_t(ledger::Evidence::kBareCr);

struct Entry {
  double first_seen = 0, last_seen = 0;
  uint64_t connections = 0, messages = 0, tarpitted = 0;
  uint32_t evidence = 0;  // ledger::Evidence bits
};
Entry EntryOf(const ledger::SourceRecord& r);
// Packed to whole seconds (floored) and saturated counts, and back.
Facts Pack(const Entry& e);
Entry Unpack(const Facts& f);

class Index {
 public:
  // IPv6 senders are kept per network of ipv6_prefix bits, as the ledger
  // files them (ledger.ipv6_prefix), so a seed from the ledger and a live
  // session of the same /64 meet, and a lookup finds either.
  explicit Index(size_t max_entries, int ipv6_prefix = 128)
      : per_shard_(max_entries / kShards + 1), ipv6_prefix_(ipv6_prefix) {}
  void Update(const peer::SessionSummary& s);
  void Seed(const ledger::SourceRecord& r);
  // now: Unix seconds (the fallback's rate bound and negative cache).
  std::optional<Entry> Lookup(const base::IpAddress& ip, double now = 0);
  size_t size();

  // Looks up a source the index does not hold (its key: IPv6 per
  // ipv6_prefix) in the ledger: found, not found, or an error. Called only
  // once the index is incomplete, and never on the thread that asks Lookup:
  // a miss is answered from memory at once (NXDOMAIN) and the key queued
  // for a look-up thread, which puts a found source into the index (the
  // next query lists it) and remembers one not found for negative_seconds
  // (at most kMaxNegative addresses). A slow store so delays the listing of
  // a forgotten source, never a DNS answer. At most max_per_second keys
  // are queued a second and at most kMaxQueued wait; the rest are skipped
  // (dnsbl_ledger_limited_total). Set once, before serving; starts the
  // thread, which the destructor stops.
  using Fallback = std::function<base::Result<std::optional<Entry>>(
      const base::IpAddress& key)>;
  void SetFallback(Fallback f, int max_per_second, double negative_seconds);
  // Blocks until no look-up is queued or running, at most timeout seconds
  // (tests). Returns whether it became idle.
  bool WaitIdle(double timeout_seconds);
  // Stops the look-up thread (queued keys are dropped); call before the
  // ledger closes. Idempotent; the destructor calls it.
  void StopLookups();
  ~Index() { StopLookups(); }
  // The seed stopped at max_entries: the ledger holds more than the index.
  void MarkIncomplete() { incomplete_ = true; }
  bool incomplete() const { return incomplete_; }
  static constexpr size_t kMaxQueued = 1024;
  static constexpr size_t kMaxNegative = 65536;

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    FlatTable<uint32_t> v4;
    FlatTable<V6Key> v6;
    size_t size() const { return v4.size() + v6.size(); }
  };
  // A key's shard and its slot's record; Slot makes it (after MakeRoom).
  Shard& ShardOf(const base::IpAddress& key);
  static Facts* Find(Shard* s, const base::IpAddress& key);
  Facts* Slot(Shard* s, const base::IpAddress& key);  // REQUIRES: s->mu
  void MakeRoom(Shard* s);                            // REQUIRES: s->mu held
  void AskFallback(const base::IpAddress& key, double now);
  void RunLookups();
  size_t per_shard_;
  int ipv6_prefix_;
  std::array<Shard, kShards> shards_;
  std::atomic<bool> incomplete_{false};
  std::mutex fallback_mu_;  // guards what follows
  std::condition_variable wake_, idle_;
  Fallback fallback_;
  int max_per_second_ = 0;
  double negative_seconds_ = 0;
  double second_ = 0;  // the second max_per_second_ counts in
  int asked_ = 0;      // queued in that second
  struct Ask {
    base::IpAddress key;
    double now;
  };
  std::deque<Ask> queue_;
  std::unordered_set<base::IpAddress> pending_;  // queued or being asked
  bool stopping_ = false;
  std::unordered_map<base::IpAddress, double> negative_;  // until when
  std::thread thread_;
};

struct Listing {
  std::vector<uint32_t> codes;  // A records, host order, ascending
  std::string txt;
};

// The policy. allow: networks never listed. The RFC 5782 test points are
// answered here: 127.0.0.2 (and so ::FFFF:7F00:2, the same address) is
// always listed, 127.0.0.1 never.
std::optional<Listing> Decide(const Options& o,
                              const std::vector<base::Cidr>& allow,
                              const base::IpAddress& ip,
                              const std::optional<Entry>& e, double now);

}  // namespace dnsbl
