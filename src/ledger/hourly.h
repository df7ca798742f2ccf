// Per-hour counts the stores keep beside the source records: per source
// (its sessions and messages hour by hour: the source page's timeline) and
// per sink (sessions, messages and new sources: the Overview's last day,
// which thus survives a restart). The writer adds a batch's hours in the
// same transaction as its records, one row per delta and one per hour the
// batch touches; rows older than ledger.hourly_retention_days go by
// Store::ExpireHours, at most kHourlyExpireLimit rows a call.
//
// A delta's sessions count in the hour of its last_seen (a batch covers
// about one flush interval, so at most that much lands in the next hour).
// Rows are not removed with their source (expiry, eviction): they age out
// with the window, which bounds them.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <vector>

#include "base/ip.h"
#include "ledger/source.h"

namespace ledger {

struct HourCounts {
  int64_t hour = 0;  // the hour's start, UTC seconds (a multiple of 3600)
  uint64_t sessions = 0;
  uint64_t messages = 0;
  uint64_t new_sources = 0;  // per-sink rows only
  bool operator==(const HourCounts&) const = default;
};

// Rows one ExpireHours call deletes at most: the cost of a call stays
// bounded however long expiry was off; the ledger calls again while a call
// returns the limit.
inline constexpr uint64_t kHourlyExpireLimit = 5000;

inline int64_t HourOf(double t) { return int64_t(std::floor(t / 3600)) * 3600; }

// A batch's hourly rows, gathered while a store merges it.
struct HourlyRow {
  base::IpAddress ip;
  int64_t hour = 0;
  uint64_t sessions = 0;
  uint64_t messages = 0;
};
class HourlyBatch {
 public:
  // delta: one address's part of the batch; is_new: the store had no
  // record of it. Deltas without sessions (none today) add nothing.
  void Add(const SourceRecord& delta, bool is_new);
  const std::vector<HourlyRow>& rows() const { return rows_; }
  // The per-sink rows, by hour.
  const std::map<int64_t, HourCounts>& hours() const { return hours_; }

 private:
  std::vector<HourlyRow> rows_;
  std::map<int64_t, HourCounts> hours_;
};

// The memory store's (and the reference) version: the same rows in maps.
class HourlyMap {
 public:
  void Apply(const HourlyBatch& b);
  std::vector<HourCounts> ForSource(const base::IpAddress& ip,
                                    double since) const;
  std::vector<HourCounts> All(double since) const;
  uint64_t Expire(double cutoff);

 private:
  std::map<std::pair<base::IpAddress, int64_t>, HourCounts> per_source_;
  std::map<int64_t, HourCounts> per_sink_;
};

}  // namespace ledger
