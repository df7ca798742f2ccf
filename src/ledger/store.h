// Where source records live between restarts. The ledger's writer thread is
// the only caller of Apply and Expire; query methods may be called from any
// thread concurrently with them. Every method is thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/status.h"
#include "ledger/hourly.h"
#include "ledger/query.h"
#include "ledger/source.h"

namespace ledger {

// Sums over every stored record.
struct Totals {
  uint64_t sources = 0;
  uint64_t connections = 0;
  uint64_t messages = 0;
  uint64_t recipients = 0;
  uint64_t bytes = 0;
  double seconds_held = 0;
  bool operator==(const Totals&) const = default;
};

// What a store's bounds (SqliteOptions::max_sources, max_db_bytes) have
// done; zero where a store has none.
struct StoreUsage {
  uint64_t db_bytes = 0;      // pages in use (freed pages not counted)
  uint64_t max_db_bytes = 0;  // 0: no budget
  uint64_t max_sources = 0;   // 0: no cap
  uint64_t evicted = 0;       // records evicted to stay within them
  bool at_budget = false;     // the last commit found db_bytes >= budget
  // Records Apply created (addresses the store had not seen) since it was
  // opened: the ledger's "new sources" per hour. 0 where a store cannot
  // tell.
  uint64_t created = 0;
};

// The most records one Store::Expire call deletes.
inline constexpr uint64_t kExpireBatch = 10000;

class Store {
 public:
  virtual ~Store() = default;
  // Merges each delta into the stored record for its IP (MergeRecord),
  // creating it if new. All or nothing: on error nothing was applied.
  // REQUIRES: no two deltas share an IP.
  virtual base::Status Apply(const std::vector<SourceRecord>& deltas) = 0;
  // Deletes records whose last_seen is before cutoff, the oldest first and
  // at most kExpireBatch of them in one transaction; returns how many. A
  // caller with a full batch calls again (Ledger does, one batch a flush,
  // so that a retention sweep of millions of records never holds the
  // writer or a shutdown for minutes).
  virtual base::Result<uint64_t> Expire(double cutoff) = 0;
  // The next write tries its server at once, whatever reconnect backoff an
  // earlier failure set: Ledger::Close's last attempts must not give up on
  // a database that came back a moment ago. No-op for a local store.
  virtual void RetryNow() {}

  virtual base::Result<std::optional<SourceRecord>> Get(
      const base::IpAddress& ip) = 0;
  virtual base::Result<SourcePage> Query(const SourceQuery& q) = 0;
  virtual base::Result<Totals> GetTotals() = 0;

  // Calls each for every record q selects, in q's order and page, holding
  // one record at a time: what the exports use, so that their memory does
  // not grow with the number of sources. Stops at the first error each
  // returns and returns it. Records committed during the scan may or may
  // not be seen. The default reads the page through Query (constant memory
  // only for stores that override it).
  virtual StoreUsage Usage() { return {}; }

  // The hourly rows (ledger/hourly.h) from the hour of since on, oldest
  // first: one source's, or this sink's (Hours). ExpireHours deletes rows
  // of hours before cutoff, at most kHourlyExpireLimit per-source rows a
  // call, and returns how many. A store without them has none.
  virtual base::Result<std::vector<HourCounts>> SourceHours(
      const base::IpAddress& /*ip*/, double /*since*/) {
    return std::vector<HourCounts>();
  }
  virtual base::Result<std::vector<HourCounts>> Hours(double /*since*/) {
    return std::vector<HourCounts>();
  }
  virtual base::Result<uint64_t> ExpireHours(double /*cutoff*/) {
    return uint64_t(0);
  }

  using Visitor = std::function<base::Status(const SourceRecord&)>;
  virtual base::Status Scan(const SourceQuery& q, const Visitor& each) {
    auto page = Query(q);
    if (!page.ok()) return page.status();
    for (const auto& r : page->records) {
      if (auto s = each(r); !s.ok()) return s;
    }
    return {};
  }
};

// Keeps everything in a map. For tests, and as the reference semantics.
std::unique_ptr<Store> NewMemoryStore();

// Wraps a store and fails on command: for the tests of the retry path.
class FaultStore final : public Store {
 public:
  explicit FaultStore(Store* base) : base_(base) {}
  // Makes the next n write calls (Apply, Expire) fail with message; n < 0:
  // fail until told otherwise.
  void FailWrites(int n, std::string message = "injected fault");
  // Makes read calls fail too while set.
  void FailReads(bool fail);
  int write_calls() const;
  int failed_writes() const;

  base::Status Apply(const std::vector<SourceRecord>& deltas) override;
  base::Result<uint64_t> Expire(double cutoff) override;
  base::Result<std::optional<SourceRecord>> Get(
      const base::IpAddress& ip) override;
  base::Result<SourcePage> Query(const SourceQuery& q) override;
  base::Result<Totals> GetTotals() override;
  base::Status Scan(const SourceQuery& q, const Visitor& each) override;
  StoreUsage Usage() override { return base_->Usage(); }
  base::Result<std::vector<HourCounts>> SourceHours(const base::IpAddress& ip,
                                                    double since) override {
    return base_->SourceHours(ip, since);
  }
  base::Result<std::vector<HourCounts>> Hours(double since) override {
    return base_->Hours(since);
  }
  base::Result<uint64_t> ExpireHours(double cutoff) override {
    return base_->ExpireHours(cutoff);
  }

 private:
  base::Status NextWrite();

  Store* base_;
  mutable std::mutex mu_;
  int fail_writes_ = 0;
  bool fail_reads_ = false;
  std::string message_;
  int write_calls_ = 0;
  int failed_writes_ = 0;
};

}  // namespace ledger
