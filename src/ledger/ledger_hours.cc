// The ledger's use of the stores' hourly rows (ledger/hourly.h): the ring
// of the last day filled from them at start, the per-source timeline, and
// their expiry.
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
