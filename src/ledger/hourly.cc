#include "ledger/hourly.h"

namespace ledger {

void HourlyBatch::Add(const SourceRecord& delta, bool is_new) {
  if (delta.connections == 0 && delta.messages == 0 && !is_new) return;
  int64_t hour = HourOf(delta.last_seen);
  rows_.push_back({delta.ip, hour, delta.connections, delta.messages});
  HourCounts& h = hours_[hour];
  h.hour = hour;
  h.sessions += delta.connections;
  h.messages += delta.messages;
  h.new_sources += is_new;
}

void HourlyMap::Apply(const HourlyBatch& b) {
  for (const auto& r : b.rows()) {
    HourCounts& h = per_source_[{r.ip, r.hour}];
    h.hour = r.hour;
    h.sessions += r.sessions;
    h.messages += r.messages;
  }
  for (const auto& [hour, c] : b.hours()) {
    HourCounts& h = per_sink_[hour];
    h.hour = hour;
    h.sessions += c.sessions;
    h.messages += c.messages;
    h.new_sources += c.new_sources;
  }
}

std::vector<HourCounts> HourlyMap::ForSource(const base::IpAddress& ip,
                                             double since) const {
  std::vector<HourCounts> out;
  for (auto it = per_source_.lower_bound({ip, HourOf(since)});
       it != per_source_.end() && it->first.first == ip; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::vector<HourCounts> HourlyMap::All(double since) const {
  std::vector<HourCounts> out;
  for (auto it = per_sink_.lower_bound(HourOf(since)); it != per_sink_.end();
       ++it) {
    out.push_back(it->second);
  }
  return out;
}

uint64_t HourlyMap::Expire(double cutoff) {
  uint64_t n = 0;
  for (auto it = per_source_.begin();
       it != per_source_.end() && n < kHourlyExpireLimit;) {
    if (it->first.second < cutoff) {
      it = per_source_.erase(it);
      n++;
    } else {
      ++it;
    }
  }
  n += std::erase_if(per_sink_,
                     [&](const auto& kv) { return kv.first < cutoff; });
  return n;
}

}  // namespace ledger
