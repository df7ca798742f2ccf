// The source ledger: per-IP aggregates of every SMTP session.
//
// Record() is called by the I/O threads when a session ends. Each thread
// aggregates into its own shard (a map guarded by a mutex that only that
// thread and the writer ever take), so recording never waits for disk and
// never contends across cores. A writer thread wakes every flush_interval,
// takes every shard's map, merges them into a pending batch and commits it
// to the Store in one transaction. When the store fails (disk full, locked,
// removed, unreachable) the batch is retried unchanged at the next interval
// before newer records (which gather in a new pending batch); new
// IPs beyond max_pending_bytes are dropped (and counted), known ones still
// merge. The writer cuts its batches on a cadence that accounts for the
// commit time (ledger/cadence.h), so a kill -9 loses about one
// flush_interval of records. Close() commits everything and stops the writer.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "base/ip.h"
#include "base/metrics.h"
#include "base/status.h"
#include "ledger/export.h"
#include "ledger/options.h"
#include "ledger/postgres_store.h"
#include "ledger/query.h"
#include "ledger/source.h"
#include "ledger/spill.h"
#include "ledger/store.h"
#include "peer/summary.h"

namespace ledger {

// Activity over a recent window, from what was recorded (not what was
// committed).
struct Window {
  double seconds = 0;
  uint64_t connections = 0;
  uint64_t messages = 0;
  uint64_t recipients = 0;
  uint64_t bytes = 0;
  // Addresses the store had not seen, counted when their first session is
  // committed (HourlySeries only; 0 from a store that cannot tell).
  uint64_t new_sources = 0;
};

// The hourly ring: 24 buckets of one wall-clock (UTC) hour each.
inline constexpr int kHourlyBuckets = 24;

struct Stats {
  Totals totals;  // committed records
  Window last_minute;
  Window last_hour;
  uint64_t pending_sources = 0;  // recorded, not yet committed
};

// Bucket upper bounds (seconds) of the session duration histogram.
inline constexpr std::array<double, 12> kDurationBounds = {
    0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800};
// Bucket upper bounds (seconds) of the commit duration histogram.
inline constexpr std::array<double, 10> kCommitBounds = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

struct Histogram {
  std::vector<uint64_t> buckets;  // per bound, plus +Inf last (not cumulative)
  uint64_t count = 0;
  double sum = 0;
};

struct LedgerMetrics {
  uint64_t sessions_recorded = 0;
  uint64_t sessions_dropped = 0;  // lost to the pending-memory bound or Close
  uint64_t sources_spilled = 0;   // records written to the spill file
  uint64_t commits = 0;
  uint64_t commit_errors = 0;
  uint64_t expired = 0;
  uint64_t pending_sources = 0;
  uint64_t pending_bytes = 0;
  bool store_healthy = true;  // the last commit succeeded
  StoreUsage usage;           // the store's bounds and what they evicted
  Histogram session_duration;
  Histogram commit_duration;
};

// The store config.store names: SQLite at db_path, or the shared
// PostgreSQL database (password file read here; sink_id defaults to the
// host name). Errors name the setting at fault.
base::Result<std::unique_ptr<Store>> OpenConfiguredStore(const Options& config);
// The connection settings of store = "postgresql" (password file read);
// errors name the setting at fault. The trap ledger connects with them too.
base::Result<PostgresOptions> ConfiguredPostgresOptions(const Options& config);
// This sink's identity: config.sink_id, or the host name when empty.
std::string SinkId(const Options& config);

class Ledger {
 public:
  // Opens the configured store (OpenConfiguredStore) and starts the writer.
  static base::Result<std::unique_ptr<Ledger>> Open(const Options& config);
  // Any store and clock. With start_writer false nothing is committed until
  // Flush() is called (tests drive time with a FakeClock).
  // REQUIRES: clock outlives the ledger.
  static std::unique_ptr<Ledger> Create(std::unique_ptr<Store> store,
                                        const Options& config,
                                        const base::Clock* clock,
                                        bool start_writer);
  ~Ledger();  // Close()
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Adds one ended session. Thread-safe, cheap, never blocks on the store.
  // Sessions recorded after Close() are dropped (and counted).
  void Record(const peer::SessionSummary& session);

  // Commits everything recorded before the call. Returns the store's error
  // if the commit failed (the data stays pending). Thread-safe.
  base::Status Flush();
  // Deletes records not seen for retention_days (no-op when <= 0), in
  // batches of kExpireBatch until none is left or the ledger is closing.
  base::Status ExpireNow();

  // Stops the writer and commits what remains (retrying a failing store a
  // few times; then, with a spill file, writes it there: success).
  // Idempotent. REQUIRES: I/O threads have stopped recording.
  base::Status Close();

  // Keeps what does not fit in memory, or is not committed at Close, in the
  // spill file at path (ledger/spill.h), bounded by max_bytes. Loads what
  // an earlier run left there: its unconfirmed batch is committed first
  // unless the store already holds its sequence, then the spilled records.
  // Open() calls it with config.spill_path (default: spamsink.spill beside
  // db_path) unless config.max_spill_bytes is 0. REQUIRES: before the
  // writer starts and before any Record.
  base::Status UseSpill(const std::string& path, uint64_t max_bytes);

  // Queries see committed data (at most one flush interval behind). A
  // q.sink filter goes to a store with per-sink rows (PostgreSQL); with any
  // other store only this sink's own SinkId matches (everything), another
  // matches nothing.
  base::Result<SourcePage> Sources(const SourceQuery& q);
  // Streams the export of what q selects (ExportFromStore): constant
  // memory whatever the number of sources.
  // Visits what q selects one record at a time (Store::Scan).
  base::Status ScanSources(const SourceQuery& q, const Store::Visitor& each);
  base::Status ExportSources(const SourceQuery& q, const ExportOptions& o,
                             const Sink& sink);
  base::Result<std::optional<SourceRecord>> Source(const base::IpAddress& ip);
  base::Result<Stats> GetStats();
  // Committed traffic in count buckets of bucket_seconds each, oldest
  // first, the last one ending now (the dashboard's per-minute chart).
  // Reaches back at most an hour (the rate ring); older buckets are empty.
  std::vector<Window> RateSeries(int bucket_seconds, int count);
  // The last day hour by hour: kHourlyBuckets windows, oldest first, each
  // one UTC hour (hour_start + 3600 * i), the last the current, partial
  // hour. Sessions and messages as recorded (like RateSeries), new sources
  // as committed. Kept in memory, and filled at Create from the store's
  // per-sink hours (Store::Hours), so a restart keeps the day.
  std::vector<Window> HourlySeries(double* first_hour_start = nullptr);
  // One source's sessions and messages per hour from since on, oldest
  // first (committed data; ip is looked up by Key(ip)).
  base::Result<std::vector<HourCounts>> SourceHours(const base::IpAddress& ip,
                                                    double since);
  // Deletes hourly rows older than hourly_retention_days: one bounded
  // Store::ExpireHours call; returns whether rows may remain (the writer
  // then calls again at its next flush, else hourly).
  bool ExpireHoursNow();
  // One Store::Expire batch; returns whether records may remain (the writer
  // then calls again at its next flush, else hourly).
  bool ExpireBatch();
  LedgerMetrics Metrics();
  // The same figures for /metrics (ledger_*, session_duration_seconds),
  // rendered with the server's by base::RenderPrometheus.
  std::vector<base::Metric> PrometheusMetrics();

  // One step of the writer thread: commits what is pending (FlushLocked),
  // runs a bounded expiry batch, and returns when to cut the next batch
  // (NextCut, ledger/cadence.h: a record is committed about one
  // flush_interval after it was recorded, whatever the commit time up to
  // half an interval). Public so that tests drive the writer's schedule
  // with a FakeClock (start_writer false).
  base::SteadyTime WriterStep();

  // The ledger's key for ip: itself for IPv4, its network of
  // config.ipv6_prefix bits for IPv6 (what Record files it under and
  // Source looks up).
  base::IpAddress Key(const base::IpAddress& ip) const;

  Store* store() { return store_.get(); }
  double flush_interval() const { return config_.flush_interval; }
  int ipv6_prefix() const { return config_.ipv6_prefix; }

 private:
  // Resolves q->sink for a store without per-sink rows (see Sources);
  // false: nothing can match.
  bool ResolveSink(SourceQuery* q) const;
  struct Shard;
  struct Bucket {
    int64_t second = -1;
    Window w;
  };

  Ledger(std::unique_ptr<Store> store, const Options& config,
         const base::Clock* clock);
  Shard* LocalShard();
  void WriterLoop();
  base::Duration WriterInterval() const;
  base::Status FlushLocked();  // REQUIRES: flush_mu_ held
  base::Status Commit();       // applies in_flight_; REQUIRES: flush_mu_ held
  void StartWriter();
  // The spill file's part of a flush (ledger_spill.cc). REQUIRES: flush_mu_.
  // Writes records beyond the memory bound; false: not written (dropped).
  bool SpillOverflow(const std::vector<const SourceRecord*>& records);
  // Sends spilled chunks while the store takes them (in_flight_ empty).
  base::Status DrainSpill();
  // At Close with the store down: the batch and everything pending to disk.
  base::Status SpillAll();
  // The store's next batch sequence number (PostgresStore); 0: none.
  uint64_t StoreSequence();
  void AddToRates(const Window& w);
  // Fills the hourly ring from the store (ledger_hours.cc).
  void SeedHours();
  void AddNewSources(uint64_t n);
  Window SumRates(int seconds);

  const uint64_t id_;
  std::unique_ptr<Store> store_;
  Options config_;
  const base::Clock* clock_;

  std::mutex shards_mu_;  // guards shards_ (registration only)
  std::unordered_map<std::thread::id, std::unique_ptr<Shard>> shards_;

  std::mutex flush_mu_;  // one flush at a time; guards the members below
  std::unordered_map<base::IpAddress, SourceRecord> pending_;
  uint64_t pending_bytes_ = 0;
  // The batch last handed to the store, kept as it was until it commits.
  std::vector<SourceRecord> in_flight_;
  std::unordered_set<base::IpAddress> in_flight_ips_;
  uint64_t in_flight_bytes_ = 0;
  double last_expire_ = 0;
  bool hours_backlog_ = false;   // the last ExpireHoursNow hit its limit
  bool expire_backlog_ = false;  // the last ExpireBatch was full
  bool healthy_ = true;
  std::unique_ptr<Spill> spill_;
  bool spill_unsent_ = false;     // the spill file may hold unsent records
  bool drain_first_ = false;      // the start found a spill: send it first
  bool in_flight_saved_ = false;  // in_flight_ is the spill's .batch file

  std::mutex rates_mu_;
  std::vector<Bucket> rates_;  // one per wall second, ring of 3600
  std::vector<Bucket> hours_;  // one per wall hour (second: its start), 24

  std::atomic<uint64_t> commits_{0}, commit_errors_{0}, expired_{0},
      dropped_{0}, spilled_{0}, pending_sources_{0}, pending_bytes_gauge_{0};
  std::atomic<bool> healthy_flag_{true};
  std::mutex commit_hist_mu_;
  Histogram commit_hist_;

  std::mutex writer_mu_;
  std::condition_variable writer_cv_;
  bool stop_ = false;
  std::atomic<bool> closed_{false};
  std::thread writer_;
};

}  // namespace ledger
