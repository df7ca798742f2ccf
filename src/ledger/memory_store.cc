#include <algorithm>
#include <map>
#include <mutex>

#include "ledger/store.h"

namespace ledger {
namespace {

class MemoryStore final : public Store {
 public:
  base::Status Apply(const std::vector<SourceRecord>& deltas) override {
    std::lock_guard lock(mu_);
    HourlyBatch hours;
    for (const auto& d : deltas) {
      auto [it, inserted] = records_.try_emplace(d.ip);
      if (inserted) it->second.ip = d.ip;
      created_ += inserted;
      MergeRecord(&it->second, d);
      hours.Add(d, inserted);
    }
    hourly_.Apply(hours);
    return {};
  }

  StoreUsage Usage() override {
    std::lock_guard lock(mu_);
    StoreUsage u;
    u.created = created_;
    return u;
  }

  base::Result<std::vector<HourCounts>> SourceHours(const base::IpAddress& ip,
                                                    double since) override {
    std::lock_guard lock(mu_);
    return hourly_.ForSource(ip, since);
  }
  base::Result<std::vector<HourCounts>> Hours(double since) override {
    std::lock_guard lock(mu_);
    return hourly_.All(since);
  }
  base::Result<uint64_t> ExpireHours(double cutoff) override {
    std::lock_guard lock(mu_);
    return hourly_.Expire(cutoff);
  }

  base::Result<uint64_t> Expire(double cutoff) override {
    std::lock_guard lock(mu_);
    std::vector<std::pair<double, base::IpAddress>> old;
    for (const auto& [ip, r] : records_) {
      if (r.last_seen < cutoff) old.emplace_back(r.last_seen, ip);
    }
    if (old.size() > kExpireBatch) {  // the oldest batch, as the stores do
      std::nth_element(old.begin(), old.begin() + kExpireBatch, old.end());
      old.resize(kExpireBatch);
    }
    for (const auto& [seen, ip] : old) records_.erase(ip);
    return uint64_t(old.size());
  }

  base::Result<std::optional<SourceRecord>> Get(
      const base::IpAddress& ip) override {
    std::lock_guard lock(mu_);
    auto it = records_.find(ip);
    if (it == records_.end()) return std::optional<SourceRecord>();
    return std::optional<SourceRecord>(it->second);
  }

  base::Result<SourcePage> Query(const SourceQuery& q) override {
    std::vector<SourceRecord> all;
    {
      std::lock_guard lock(mu_);
      all.reserve(records_.size());
      for (const auto& [ip, r] : records_) {
        if (Matches(q, r)) all.push_back(r);
      }
    }
    return RunQuery(q, std::move(all));
  }

  base::Result<Totals> GetTotals() override {
    std::lock_guard lock(mu_);
    Totals t;
    for (const auto& [ip, r] : records_) {
      t.sources++;
      t.connections += r.connections;
      t.messages += r.messages;
      t.recipients += r.recipients;
      t.bytes += r.bytes;
      t.seconds_held += r.seconds_held;
    }
    return t;
  }

 private:
  std::mutex mu_;
  std::map<base::IpAddress, SourceRecord> records_;
  uint64_t created_ = 0;  // records Apply created
  HourlyMap hourly_;
};

}  // namespace

std::unique_ptr<Store> NewMemoryStore() {
  return std::make_unique<MemoryStore>();
}

}  // namespace ledger
