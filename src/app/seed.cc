// What the server starts from: the reputation and the DNSBL seeded from
// the ledger (spamsink serve, before the listeners open).
#include "app/seed.h"

#include <algorithm>
#include <optional>

#include "base/log.h"
#include "base/metrics.h"
#include "dnsbl/listing.h"

namespace app {

// Loads the ledger's most recent senders into the reputation until it
// holds seed_bytes (server.seed_bytes) or its byte budget is full, reading
// one record at a time (a big ledger never sits in memory, and no page is
// read twice). Returns the bytes the seed took.
int64_t SeedReputation(ledger::Ledger* ledger, net::Server* server,
                       int64_t seed_bytes) {
  const int64_t before = base::g_peer_cache_bytes.load();
  ledger::SourceQuery q;
  q.sort = ledger::SortKey::kLastSeen;
  q.limit = 0;
  uint64_t seeded = 0, refused = 0;
  constexpr uint64_t kRefusalsToStop = 256;  // shards fill unevenly
  bool at_seed_budget = false;
  auto s = ledger->ScanSources(q, [&](const ledger::SourceRecord& r) {
    if (base::g_peer_cache_bytes.load() - before >= seed_bytes) {
      at_seed_budget = true;
      return base::Status::Error("full");
    }
    // A source record extends the history the reputation reads.
    if (server->SeedHistory(r.ip, r)) {
      ++seeded;
    } else if (++refused >= kRefusalsToStop) {
      return base::Status::Error("full");
    }
    return base::Status();
  });
  auto line = base::LogLine(base::LogLevel::kInfo, "reputation_loaded");
  line.Kv("sources", seeded);
  const int64_t used = base::g_peer_cache_bytes.load() - before;
  line.Kv("bytes", used);
  if (at_seed_budget) {
    line.Kv("left_out", "older senders beyond server.seed_bytes");
  } else if (refused != 0) {
    line.Kv("left_out", "older senders beyond the budget");
  }
  if (!s.ok() && !at_seed_budget && refused < kRefusalsToStop) {
    line.Kv("error", s.message());
  }
  return used;
}

// The DNSBL starts from what the ledger knows of the sources seen within
// its window, most recent first, up to max_entries of them.
void SeedDnsbl(ledger::Ledger* ledger, dnsbl::Index* index,
               const dnsbl::Options& o) {
  constexpr uint64_t kPage = 10000;
  ledger::SourceQuery q;
  q.sort = ledger::SortKey::kLastSeen;
  q.limit = kPage;
  if (o.window_seconds > 0) {
    q.since = base::SystemClock::Get().WallSeconds() - o.window_seconds;
  }
  uint64_t seeded = 0;
  while (seeded < uint64_t(o.max_entries)) {
    auto page = ledger->Sources(q);
    if (!page.ok() || page->records.empty()) break;
    for (const auto& r : page->records) index->Seed(r);
    seeded += page->records.size();
    q.offset += kPage;
    // Stopped at the cap with more in the ledger: misses ask the ledger.
    if (seeded >= uint64_t(o.max_entries) && page->total > seeded) {
      index->MarkIncomplete();
    }
  }
  // A source the index forgot (beyond max_entries) is looked up in the
  // ledger on the index's look-up thread (never the DNS thread), at most
  // kLookupsPerSecond times a second; one not found is not asked again for
  // the negative TTL.
  constexpr int kLookupsPerSecond = 200;
  index->SetFallback(
      [ledger](const base::IpAddress& key)
          -> base::Result<std::optional<dnsbl::Entry>> {
        auto r = ledger->Source(key);
        if (!r.ok()) return r.status();
        if (!r->has_value()) return std::optional<dnsbl::Entry>();
        return std::optional<dnsbl::Entry>(dnsbl::EntryOf(**r));
      },
      kLookupsPerSecond, std::max(1, o.negative_ttl));
  base::LogLine(base::LogLevel::kInfo, "dnsbl_loaded").Kv("sources", seeded);
}

}  // namespace app
