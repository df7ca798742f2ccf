#include "ledger/ledger.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "base/log.h"
#include "base/thread_kind.h"
#include "ledger/cadence.h"
#include "ledger/postgres_store.h"

namespace ledger {

struct Ledger::Shard {
  std::mutex mu;  // taken by the owning I/O thread and by the writer
  std::unordered_map<base::IpAddress, SourceRecord> records;
  uint64_t sessions = 0;  // ever recorded through this shard
  std::array<uint64_t, kDurationBounds.size() + 1> duration{};
  double duration_sum = 0;
};

namespace {

std::atomic<uint64_t> g_next_ledger_id{1};

struct ShardCache {
  uint64_t ledger_id = 0;
  void* shard = nullptr;
};
thread_local ShardCache t_shard_cache;

constexpr int kRateSeconds = 3600;
constexpr int kCloseAttempts = 3;
constexpr double kExpireEverySeconds = 3600;

template <size_t N>
size_t BucketOf(const std::array<double, N>& bounds, double v) {
  return std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin();
}

base::Metric Value(const char* name, base::Metric::Type type, const char* help,
                   double value) {
  base::Metric m;
  m.name = name;
  m.help = help;
  m.type = type;
  m.value = value;
  return m;
}

template <size_t N>
base::Metric HistogramMetric(const char* name, const char* help,
                             const std::array<double, N>& bounds,
                             const Histogram& h) {
  base::Metric m;
  m.name = name;
  m.help = help;
  m.type = base::Metric::Type::kHistogram;
  m.bounds.assign(bounds.begin(), bounds.end());
  m.buckets = h.buckets;
  m.sum = h.sum;
  m.count = h.count;
  return m;
}

}  // namespace

Ledger::Ledger(std::unique_ptr<Store> store, const Options& config,
               const base::Clock* clock)
    : id_(g_next_ledger_id++),
      store_(std::move(store)),
      config_(config),
      clock_(clock),
      rates_(kRateSeconds),
      hours_(kHourlyBuckets) {
  commit_hist_.buckets.assign(kCommitBounds.size() + 1, 0);
}

base::Result<std::unique_ptr<Ledger>> Ledger::Open(const Options& config) {
  auto store = OpenConfiguredStore(config);
  if (!store.ok()) return store.status();
  auto l = Create(std::move(store).value(), config, &base::SystemClock::Get(),
                  false);
  if (config.max_spill_bytes > 0) {
    std::string path = config.spill_path;
    if (path.empty()) {
      auto dir = std::filesystem::path(config.db_path).parent_path();
      path =
          (dir.empty() ? std::filesystem::path(".") : dir) / "spamsink.spill";
    }
    auto s = l->UseSpill(path, uint64_t(config.max_spill_bytes));
    if (!s.ok()) return s;
  }
  l->StartWriter();
  return l;
}

std::unique_ptr<Ledger> Ledger::Create(std::unique_ptr<Store> store,
                                       const Options& config,
                                       const base::Clock* clock,
                                       bool start_writer) {
  std::unique_ptr<Ledger> l(new Ledger(std::move(store), config, clock));
  l->SeedHours();
  if (start_writer) l->StartWriter();
  return l;
}

void Ledger::StartWriter() {
  writer_ = std::thread([this] { WriterLoop(); });
}

Ledger::~Ledger() { Close(); }

Ledger::Shard* Ledger::LocalShard() {
  ShardCache& c = t_shard_cache;
  if (c.ledger_id == id_) return static_cast<Shard*>(c.shard);
  std::lock_guard lock(shards_mu_);
  auto& s = shards_[std::this_thread::get_id()];
  if (!s) s = std::make_unique<Shard>();
  c.ledger_id = id_;
  c.shard = s.get();
  return s.get();
}

void Ledger::Record(const peer::SessionSummary& session) {
  if (closed_.load(std::memory_order_relaxed)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Shard* s = LocalShard();
  std::lock_guard lock(s->mu);
  base::IpAddress key = Key(session.client);
  auto [it, inserted] = s->records.try_emplace(key);
  if (inserted) it->second.ip = key;
  MergeSession(&it->second, session);
  if (config_.ipv6_prefix < 128 && !session.client.is_v4()) {
    SampleAddress(&it->second, session.client, 1);
  }
  s->sessions++;
  s->duration[BucketOf(kDurationBounds, session.duration_seconds)]++;
  s->duration_sum += session.duration_seconds;
}

base::Status Ledger::Flush() {
  std::lock_guard lock(flush_mu_);
  return FlushLocked();
}

base::Status Ledger::FlushLocked() {
  std::vector<std::unordered_map<base::IpAddress, SourceRecord>> taken;
  {
    std::lock_guard lock(shards_mu_);
    taken.reserve(shards_.size());
    for (auto& [tid, shard] : shards_) {
      std::lock_guard shard_lock(shard->mu);
      if (shard->records.empty()) continue;
      taken.emplace_back();
      taken.back().swap(shard->records);
    }
  }
  Window w;
  uint64_t limit =
      config_.max_pending_bytes >= 0 ? config_.max_pending_bytes : 256 << 20;
  std::vector<SourceRecord> overflow;  // beyond the bound: spill or drop
  for (auto& map : taken) {
    for (auto& [ip, rec] : map) {
      w.connections += rec.connections;
      w.messages += rec.messages;
      w.recipients += rec.recipients;
      w.bytes += rec.bytes;
      auto it = pending_.find(ip);
      if (it == pending_.end() && in_flight_ips_.count(ip) != 0) {
        // Known (in the batch being retried): merges despite the bound.
        size_t size = rec.ApproxBytes();
        pending_bytes_ += size;
        pending_.emplace(ip, std::move(rec));
        continue;
      }
      if (it != pending_.end()) {
        pending_bytes_ -= it->second.ApproxBytes();
        MergeRecord(&it->second, rec);
        pending_bytes_ += it->second.ApproxBytes();
        continue;
      }
      size_t size = rec.ApproxBytes();
      if (limit != 0 && pending_bytes_ + in_flight_bytes_ + size > limit) {
        overflow.push_back(std::move(rec));
        continue;
      }
      pending_bytes_ += size;
      pending_.emplace(ip, std::move(rec));
    }
  }
  if (w.connections != 0) AddToRates(w);
  if (!overflow.empty()) {
    std::vector<const SourceRecord*> ptrs;
    for (const auto& r : overflow) ptrs.push_back(&r);
    if (!SpillOverflow(ptrs)) {
      for (const auto& r : overflow) {
        dropped_.fetch_add(r.connections, std::memory_order_relaxed);
      }
    }
  }
  // A batch that failed is retried as it was, before anything newer: a
  // store may have committed it without saying so (a lost COMMIT reply), and
  // only an identical retry lets it recognise the batch (PostgresStore).
  bool retried = !in_flight_.empty();
  base::Status status = retried ? Commit() : base::Status();
  // Spilled records go before new ones once the store is known to take
  // batches (a retry just went in, or the start found a spill).
  if (status.ok() && spill_unsent_ && (retried || drain_first_)) {
    drain_first_ = false;
    status = DrainSpill();
  }
  if (status.ok() && !pending_.empty()) {
    in_flight_.reserve(pending_.size());
    for (auto& [ip, rec] : pending_) {
      in_flight_ips_.insert(ip);
      in_flight_.push_back(std::move(rec));
    }
    pending_.clear();
    in_flight_bytes_ = pending_bytes_;
    pending_bytes_ = 0;
    status = Commit();
    if (status.ok() && spill_unsent_) status = DrainSpill();
  }
  healthy_flag_.store(healthy_);
  uint64_t sources = in_flight_.size();
  for (const auto& [ip, rec] : pending_) sources += !in_flight_ips_.count(ip);
  pending_sources_.store(sources, std::memory_order_relaxed);
  pending_bytes_gauge_.store(pending_bytes_ + in_flight_bytes_,
                             std::memory_order_relaxed);
  return status;
}

base::Status Ledger::Commit() {
  auto t0 = std::chrono::steady_clock::now();
  uint64_t created_before = store_->Usage().created;
  base::Status status = store_->Apply(in_flight_);
  double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  if (base::LogEnabled(base::LogLevel::kDebug)) {
    base::LogLine(base::LogLevel::kDebug, "ledger_batch")
        .Kv("sources", uint64_t(in_flight_.size()))
        .Kv("bytes", uint64_t(in_flight_bytes_))
        .Kv("seconds", took)
        .Kv("ok", status.ok() ? "yes" : "no");
  }
  {
    std::lock_guard lock(commit_hist_mu_);
    commit_hist_.buckets[BucketOf(kCommitBounds, took)]++;
    commit_hist_.count++;
    commit_hist_.sum += took;
  }
  if (status.ok()) {
    commits_.fetch_add(1, std::memory_order_relaxed);
    AddNewSources(store_->Usage().created - created_before);
    if (!healthy_) {
      base::LogLine(base::LogLevel::kInfo, "ledger_store_recovered")
          .Kv("sources", uint64_t(in_flight_.size()));
    }
    in_flight_.clear();
    in_flight_ips_.clear();
    in_flight_bytes_ = 0;
    healthy_ = true;
    if (in_flight_saved_) {
      in_flight_saved_ = false;
      if (auto s = spill_->RemoveBatch(); !s.ok()) {
        base::LogLine(base::LogLevel::kError, "ledger_spill_failed")
            .Kv("error", s.message());
      }
    }
    return status;
  }
  uint64_t errors = commit_errors_.fetch_add(1) + 1;
  // Log the first failure of a run, then every 60th.
  if (healthy_ || errors % 60 == 0) {
    base::LogLine(base::LogLevel::kWarning, "ledger_store_failed")
        .Kv("error", status.message())
        .Kv("pending_sources", uint64_t(pending_.size() + in_flight_.size()))
        .Kv("pending_bytes", pending_bytes_ + in_flight_bytes_);
  }
  healthy_ = false;
  return status;
}

void Ledger::WriterLoop() {
  base::SetThreadKind(base::ThreadKind::kLedgerWriter);
  base::SteadyTime next = FirstCut(clock_->Now(), WriterInterval());
  std::unique_lock lk(writer_mu_);
  while (!stop_) {
    writer_cv_.wait_for(lk,
                        std::max(base::Duration::zero(), next - clock_->Now()),
                        [&] { return stop_; });
    if (stop_) break;
    lk.unlock();
    next = WriterStep();
    lk.lock();
  }
}

base::Duration Ledger::WriterInterval() const {
  return std::chrono::duration_cast<base::Duration>(
      std::chrono::duration<double>(std::max(0.001, config_.flush_interval)));
}

base::SteadyTime Ledger::WriterStep() {
  std::lock_guard lock(flush_mu_);
  base::SteadyTime cut = clock_->Now();
  FlushLocked();
  base::Duration commit = clock_->Now() - cut;
  double now = clock_->WallSeconds();
  if (last_expire_ == 0 || now - last_expire_ >= kExpireEverySeconds) {
    last_expire_ = now;
    expire_backlog_ = true;
    hours_backlog_ = true;
  }
  // One bounded batch of each a step, so that stop_ is seen between them
  // however much has expired.
  if (expire_backlog_) expire_backlog_ = ExpireBatch();
  if (hours_backlog_) hours_backlog_ = ExpireHoursNow();
  return NextCut(cut, commit, clock_->Now(), WriterInterval());
}

base::Status Ledger::Close() {
  if (closed_.exchange(true)) return {};
  {
    std::lock_guard lk(writer_mu_);
    stop_ = true;
  }
  writer_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  base::Status s;
  for (int i = 0; i < kCloseAttempts; ++i) {
    store_->RetryNow();
    s = Flush();
    if (s.ok()) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (spill_) {
    std::lock_guard lock(flush_mu_);
    uint64_t sources = in_flight_.size() + pending_.size();
    if (auto spilled = SpillAll(); spilled.ok()) {
      base::LogLine(base::LogLevel::kWarning, "ledger_close_spilled")
          .Kv("error", s.message())
          .Kv("sources", sources)
          .Kv("spill", spill_->path())
          .Kv("hint", "sent at the next start");
      return {};
    } else {
      base::LogLine(base::LogLevel::kError, "ledger_spill_failed")
          .Kv("error", spilled.message());
    }
  }
  base::LogLine(base::LogLevel::kError, "ledger_close_lost")
      .Kv("error", s.message())
      .Kv("sources", pending_sources_.load());
  return s;
}

namespace {

void AddWindow(Window* to, const Window& w) {
  to->connections += w.connections;
  to->messages += w.messages;
  to->recipients += w.recipients;
  to->bytes += w.bytes;
  to->new_sources += w.new_sources;
}

}  // namespace

void Ledger::AddToRates(const Window& w) {
  int64_t sec = int64_t(std::floor(clock_->WallSeconds()));
  int64_t hour = sec - sec % 3600;
  std::lock_guard lock(rates_mu_);
  Bucket& b = rates_[size_t(sec % kRateSeconds)];
  if (b.second != sec) b = Bucket{sec, {}};
  AddWindow(&b.w, w);
  Bucket& h = hours_[size_t(hour / 3600 % kHourlyBuckets)];
  if (h.second != hour) h = Bucket{hour, {}};
  AddWindow(&h.w, w);
}

void Ledger::AddNewSources(uint64_t n) {
  if (n == 0) return;
  Window w;
  w.new_sources = n;
  AddToRates(w);
}

std::vector<Window> Ledger::HourlySeries(double* first_hour_start) {
  int64_t now = int64_t(std::floor(clock_->WallSeconds()));
  int64_t first = now - now % 3600 - int64_t(kHourlyBuckets - 1) * 3600;
  if (first_hour_start != nullptr) *first_hour_start = double(first);
  std::vector<Window> out(kHourlyBuckets);
  for (auto& w : out) w.seconds = 3600;
  std::lock_guard lock(rates_mu_);
  for (const auto& h : hours_) {
    if (h.second < first || h.second > now) continue;
    AddWindow(&out[size_t((h.second - first) / 3600)], h.w);
  }
  return out;
}

Window Ledger::SumRates(int seconds) {
  int64_t now = int64_t(std::floor(clock_->WallSeconds()));
  Window w;
  w.seconds = seconds;
  std::lock_guard lock(rates_mu_);
  for (const auto& b : rates_) {
    if (b.second >= 0 && b.second > now - seconds && b.second <= now) {
      w.connections += b.w.connections;
      w.messages += b.w.messages;
      w.recipients += b.w.recipients;
      w.bytes += b.w.bytes;
    }
  }
  return w;
}

std::vector<Window> Ledger::RateSeries(int bucket_seconds, int count) {
  std::vector<Window> out(size_t(std::max(count, 0)));
  if (bucket_seconds <= 0 || out.empty()) return out;
  int64_t now = int64_t(std::floor(clock_->WallSeconds()));
  int64_t span = int64_t(bucket_seconds) * count;
  for (auto& w : out) w.seconds = bucket_seconds;
  std::lock_guard lock(rates_mu_);
  for (const auto& b : rates_) {
    if (b.second < 0 || b.second <= now - span || b.second > now) continue;
    size_t i = size_t((b.second - (now - span) - 1) / bucket_seconds);
    Window& w = out[std::min(i, out.size() - 1)];
    w.connections += b.w.connections;
    w.messages += b.w.messages;
    w.recipients += b.w.recipients;
    w.bytes += b.w.bytes;
  }
  return out;
}

bool Ledger::ResolveSink(SourceQuery* q) const {
  if (!q->sink || dynamic_cast<PostgresStore*>(store_.get()) != nullptr) {
    return true;
  }
  if (*q->sink != SinkId(config_)) return false;
  q->sink.reset();
  return true;
}

base::Result<SourcePage> Ledger::Sources(const SourceQuery& q) {
  SourceQuery resolved = q;
  if (!ResolveSink(&resolved)) return SourcePage{};
  return store_->Query(resolved);
}

base::Status Ledger::ScanSources(const SourceQuery& q,
                                 const Store::Visitor& each) {
  SourceQuery resolved = q;
  if (!ResolveSink(&resolved)) return {};
  return store_->Scan(resolved, each);
}

base::Status Ledger::ExportSources(const SourceQuery& q,
                                   const ExportOptions& options,
                                   const Sink& sink) {
  // A record stands for its whole network: list the network.
  ExportOptions o = options;
  o.v6_prefix = std::min(o.v6_prefix, config_.ipv6_prefix);
  SourceQuery resolved = q;
  if (!ResolveSink(&resolved)) {
    // Nothing matches: the format's empty file, header and all.
    auto empty = NewMemoryStore();
    return ExportFromStore(empty.get(), resolved, o, sink);
  }
  return ExportFromStore(store_.get(), resolved, o, sink);
}

base::IpAddress Ledger::Key(const base::IpAddress& ip) const {
  return SourceKey(ip, config_.ipv6_prefix);
}

base::IpAddress SourceKey(const base::IpAddress& ip, int bits) {
  return base::PrefixKey(ip, bits);
}

base::Result<std::optional<SourceRecord>> Ledger::Source(
    const base::IpAddress& ip) {
  return store_->Get(Key(ip));
}

base::Result<Stats> Ledger::GetStats() {
  auto t = store_->GetTotals();
  if (!t.ok()) return t.status();
  Stats s;
  s.totals = *t;
  s.last_minute = SumRates(60);
  s.last_hour = SumRates(3600);
  s.pending_sources = pending_sources_.load(std::memory_order_relaxed);
  return s;
}

LedgerMetrics Ledger::Metrics() {
  LedgerMetrics m;
  m.session_duration.buckets.assign(kDurationBounds.size() + 1, 0);
  {
    std::lock_guard lock(shards_mu_);
    for (auto& [tid, shard] : shards_) {
      std::lock_guard shard_lock(shard->mu);
      m.sessions_recorded += shard->sessions;
      for (size_t i = 0; i < shard->duration.size(); ++i) {
        m.session_duration.buckets[i] += shard->duration[i];
        m.session_duration.count += shard->duration[i];
      }
      m.session_duration.sum += shard->duration_sum;
    }
  }
  {
    std::lock_guard lock(commit_hist_mu_);
    m.commit_duration = commit_hist_;
  }
  m.sessions_dropped = dropped_.load();
  m.sources_spilled = spilled_.load();
  m.commits = commits_.load();
  m.commit_errors = commit_errors_.load();
  m.expired = expired_.load();
  m.pending_sources = pending_sources_.load();
  m.pending_bytes = pending_bytes_gauge_.load();
  m.store_healthy = healthy_flag_.load();
  m.usage = store_->Usage();
  return m;
}

std::vector<base::Metric> Ledger::PrometheusMetrics() {
  using Type = base::Metric::Type;
  constexpr Type kCounter = Type::kCounter, kGauge = Type::kGauge;
  LedgerMetrics m = Metrics();
  std::vector<base::Metric> out = {
      Value("ledger_sessions_recorded_total", kCounter,
            "sessions recorded by the ledger", double(m.sessions_recorded)),
      Value("ledger_sessions_dropped_total", kCounter,
            "sessions lost to the pending-memory bound or after close",
            double(m.sessions_dropped)),
      Value("ledger_commits_total", kCounter, "batches committed to the store",
            double(m.commits)),
      Value("ledger_sources_spilled_total", kCounter,
            "source records written to the spill file (ledger.spill_path)",
            double(m.sources_spilled)),
      Value("ledger_commit_errors_total", kCounter,
            "batch commits that failed (retried)", double(m.commit_errors)),
      Value("ledger_expired_total", kCounter,
            "source records deleted by retention", double(m.expired)),
      Value("ledger_pending_sources", kGauge,
            "sources recorded but not yet committed",
            double(m.pending_sources)),
      Value("ledger_pending_bytes", kGauge,
            "approximate memory held by uncommitted sources",
            double(m.pending_bytes)),
      Value("ledger_store_healthy", kGauge, "1 if the last commit succeeded",
            m.store_healthy ? 1 : 0),
      Value("ledger_sources_evicted_total", kCounter,
            "source records evicted by ledger.max_sources or max_db_bytes",
            double(m.usage.evicted)),
      Value("ledger_db_bytes", kGauge,
            "database pages in use (SQLite), at the last commit",
            double(m.usage.db_bytes)),
      Value("ledger_db_budget_bytes", kGauge,
            "ledger.max_db_bytes (0: no budget)", double(m.usage.max_db_bytes)),
      Value("ledger_max_sources", kGauge, "ledger.max_sources (0: no cap)",
            double(m.usage.max_sources)),
  };
  if (auto t = store_->GetTotals(); t.ok()) {
    out.push_back(Value("ledger_sources", kGauge, "source IPs in the store",
                        double(t->sources)));
  }
  out.push_back(HistogramMetric("session_duration_seconds",
                                "time each SMTP session was held open",
                                kDurationBounds, m.session_duration));
  out.push_back(HistogramMetric("ledger_commit_duration_seconds",
                                "time to commit one batch to the store",
                                kCommitBounds, m.commit_duration));
  return out;
}

}  // namespace ledger
