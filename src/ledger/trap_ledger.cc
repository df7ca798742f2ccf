#include "ledger/trap_ledger.h"

#include <chrono>

#include "base/metrics.h"
#include "ledger/ledger.h"
#include "ledger/trap_tables.h"

namespace ledger {
namespace {

// How often the writer expires (as the sources' ledger does).
constexpr double kExpireEverySeconds = 3600;

std::string DomainOf(const std::string& address) {
  size_t at = address.rfind('@');
  return at == std::string::npos ? "" : address.substr(at + 1);
}

}  // namespace

base::Result<std::unique_ptr<TrapLedger>> TrapLedger::Open(
    const std::string& db_path, traps::KeyRing keys, double flush_interval,
    size_t max_queue, bool read_only) {
  auto t = OpenSqliteTrapTables(db_path, read_only);
  if (!t.ok()) return t.status();
  return std::unique_ptr<TrapLedger>(new TrapLedger(
      std::move(t).value(), std::move(keys), flush_interval, max_queue));
}

base::Result<std::unique_ptr<TrapLedger>> TrapLedger::OpenPostgres(
    const PostgresOptions& options, traps::KeyRing keys, double flush_interval,
    size_t max_queue) {
  auto t = OpenPostgresTrapTables(options);
  if (!t.ok()) return t.status();
  return std::unique_ptr<TrapLedger>(new TrapLedger(
      std::move(t).value(), std::move(keys), flush_interval, max_queue));
}

base::Result<std::unique_ptr<TrapLedger>> TrapLedger::OpenConfigured(
    const Options& config, traps::KeyRing keys) {
  if (config.store == "postgresql") {
    auto o = ConfiguredPostgresOptions(config);
    if (!o.ok()) return o.status();
    return OpenPostgres(*o, std::move(keys), config.flush_interval);
  }
  auto t = Open(config.db_path, std::move(keys), config.flush_interval);
  if (!t.ok()) return base::Status::Error("ledger.db_path: " + t.error());
  return t;
}

TrapLedger::TrapLedger(std::unique_ptr<TrapTables> tables, traps::KeyRing keys,
                       double flush_interval, size_t max_queue)
    : tables_(std::move(tables)),
      keys_(std::move(keys)),
      flush_interval_(flush_interval),
      max_queue_(max_queue) {
  writer_ = std::thread([this] { WriterLoop(); });
}

TrapLedger::~TrapLedger() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  writer_.join();
  (void)Flush();
}

void TrapLedger::AddHarvest(const traps::Harvest& h) {
  std::lock_guard<std::mutex> lock(mu_);
  if (harvests_.size() + hits_.size() >= max_queue_) {
    ++dropped_;
    base::Count(base::Counter::kTrapRecordsDropped);
    return;
  }
  harvests_.push_back(h);
}

void TrapLedger::AddSession(std::string_view sender_ip, double time,
                            const std::vector<std::string>& trap_rcpts) {
  if (trap_rcpts.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : trap_rcpts) {
    if (harvests_.size() + hits_.size() >= max_queue_) {
      ++dropped_;
      base::Count(base::Counter::kTrapRecordsDropped);
      continue;
    }
    hits_.push_back(Hit{std::string(sender_ip), time, r});
  }
}

uint64_t TrapLedger::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

void TrapLedger::WriterLoop() {
  auto interval = std::chrono::duration<double>(flush_interval_);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    wake_.wait_for(lock, interval);
    if (stop_) break;
    bool expire = false;
    if (clock_ != nullptr && retention_days_ > 0) {
      double now = clock_->WallSeconds();
      if (last_expire_ == 0 || now - last_expire_ >= kExpireEverySeconds) {
        last_expire_ = now;
        expire = true;
      }
    }
    lock.unlock();
    (void)Flush();  // a failed batch is lost; the next one is tried anew
    if (expire) (void)ExpireNow();  // a failure is tried again in an hour
    lock.lock();
  }
}

void TrapLedger::SetRetention(double retention_days, const base::Clock* clock) {
  std::lock_guard<std::mutex> lock(mu_);
  retention_days_ = retention_days;
  clock_ = clock;
}

base::Result<uint64_t> TrapLedger::ExpireNow() {
  double cutoff = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (clock_ == nullptr || retention_days_ <= 0) return uint64_t{0};
    cutoff = clock_->WallSeconds() - retention_days_ * 86400;
  }
  return tables_->Expire(cutoff);
}

base::Status TrapLedger::Flush() {
  std::vector<traps::Harvest> harvests;
  std::vector<Hit> hits;
  {
    std::lock_guard<std::mutex> lock(mu_);
    harvests.swap(harvests_);
    hits.swap(hits_);
  }
  if (harvests.empty() && hits.empty()) return {};
  return Commit(std::move(harvests), std::move(hits));
}

base::Status TrapLedger::Commit(std::vector<traps::Harvest> harvests,
                                std::vector<Hit> hits) {
  // Tokens are checked here, off the SMTP path, with this sink's keys: the
  // tables only ever see verified facts.
  std::vector<TrapHit> checked;
  checked.reserve(hits.size());
  for (auto& x : hits) {
    traps::Checked c = traps::Verify(keys_, x.rcpt);
    TrapHit t;
    t.sender = std::move(x.sender);
    t.time = x.time;
    t.domain = DomainOf(x.rcpt);
    t.valid = c.verdict == traps::Verdict::kValid;
    if (t.valid) {
      t.ref = c.attribution.ref;
      t.minute = c.attribution.minute;
    }
    checked.push_back(std::move(t));
  }
  return tables_->Commit(harvests, checked);
}

base::Result<std::vector<Harvester>> TrapLedger::Harvesters(size_t limit) {
  return tables_->Harvesters(limit);
}

base::Result<std::vector<TrapLink>> TrapLedger::LinksOf(
    std::string_view sender_ip) {
  return tables_->LinksOf(sender_ip);
}

base::Result<std::vector<TrapDomain>> TrapLedger::Domains() {
  return tables_->Domains();
}

base::Result<std::vector<std::string>> TrapLedger::HarvesterIps() {
  return tables_->HarvesterIps();
}

}  // namespace ledger
