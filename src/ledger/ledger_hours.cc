// The ledger's retention, and its use of the stores' hourly rows
// (ledger/hourly.h): the ring of the last day filled from them at start, the
// per-source timeline, and the expiry of records and hourly rows in bounded
// batches.
#include <cmath>

#include "base/log.h"
#include "ledger/ledger.h"

namespace ledger {

void Ledger::SeedHours() {
  int64_t now = int64_t(std::floor(clock_->WallSeconds()));
  int64_t first = now - now % 3600 - int64_t(kHourlyBuckets - 1) * 3600;
  auto stored = store_->Hours(double(first));
  if (!stored.ok()) {
    base::LogLine(base::LogLevel::kWarning, "ledger_hours_unread")
        .Kv("error", stored.error());
    return;
  }
  std::lock_guard lock(rates_mu_);
  for (const auto& h : *stored) {
    if (h.hour < first || h.hour > now) continue;
    Bucket& b = hours_[size_t(h.hour / 3600 % kHourlyBuckets)];
    b.second = h.hour;
    b.w.seconds = 3600;
    b.w.connections = h.sessions;
    b.w.messages = h.messages;
    b.w.new_sources = h.new_sources;
  }
}

base::Result<std::vector<HourCounts>> Ledger::SourceHours(
    const base::IpAddress& ip, double since) {
  return store_->SourceHours(Key(ip), since);
}

base::Status Ledger::ExpireNow() {
  if (config_.retention_days <= 0) return {};
  double cutoff = clock_->WallSeconds() - config_.retention_days * 86400;
  uint64_t total = 0;
  base::Status status;
  while (!closed_.load()) {
    auto n = store_->Expire(cutoff);
    if (!n.ok()) {
      base::LogLine(base::LogLevel::kWarning, "ledger_expire_failed")
          .Kv("error", n.error());
      status = n.status();
      break;
    }
    expired_.fetch_add(*n, std::memory_order_relaxed);
    total += *n;
    if (*n < kExpireBatch) break;
  }
  if (total != 0) {
    base::LogLine(base::LogLevel::kInfo, "ledger_expired").Kv("sources", total);
  }
  return status;
}

bool Ledger::ExpireBatch() {
  if (config_.retention_days <= 0) return false;
  double cutoff = clock_->WallSeconds() - config_.retention_days * 86400;
  auto n = store_->Expire(cutoff);
  if (!n.ok()) {
    base::LogLine(base::LogLevel::kWarning, "ledger_expire_failed")
        .Kv("error", n.error());
    return false;
  }
  expired_.fetch_add(*n, std::memory_order_relaxed);
  if (*n != 0) {
    base::LogLine(base::LogLevel::kInfo, "ledger_expired").Kv("sources", *n);
  }
  return *n >= kExpireBatch;
}

bool Ledger::ExpireHoursNow() {
  double cutoff = clock_->WallSeconds() - config_.hourly_retention_days * 86400;
  auto n = store_->ExpireHours(cutoff);
  if (!n.ok()) {
    base::LogLine(base::LogLevel::kWarning, "ledger_expire_failed")
        .Kv("error", n.error());
    return false;
  }
  return *n >= kHourlyExpireLimit;
}

}  // namespace ledger
