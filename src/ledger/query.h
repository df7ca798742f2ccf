// Which sources a caller wants, in which order, which page: the one query
// shape every Store answers (the API's /sources filters and the exports).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ip.h"
#include "base/status.h"
#include "ledger/source.h"

namespace ledger {

enum class SortKey {
  kMessages,
  kBytes,
  kLastSeen,
  kSecondsHeld,
  kConnections,
  kDelaySeconds,  // tarpit waits imposed
  kIp
};
bool ParseSortKey(std::string_view name, SortKey* out);
const char* SortKeyName(SortKey key);

// A position in a query's order, taken from the last record of a page: the
// sort key's value and the record's IP (keyset pagination: the next page
// costs the same however deep it is, unlike an offset).
struct Cursor {
  uint64_t count = 0;  // the key when it is a counter
  double real = 0;     // the key when it is real (IsRealKey)
  base::IpAddress ip;
  bool operator==(const Cursor&) const = default;
};
// True for the keys stored as reals (last_seen, seconds_held, delay_seconds).
bool IsRealKey(SortKey key);
// The cursor text for the position of rec under sort key `key`: "VALUE_IP"
// ("12_192.0.2.1", "1714564800.25_2001:db8::1"), just the IP for kIp.
// Reals are written in their shortest exact form, so no record is skipped
// or repeated.
std::string FormatCursor(SortKey key, const SourceRecord& rec);
base::Result<Cursor> ParseCursor(SortKey key, std::string_view text);

struct SourceQuery {
  // Filters; all must hold.
  std::optional<double> since;  // last_seen >= since (Unix seconds)
  std::optional<double> until;  // last_seen < until
  std::optional<base::Cidr> cidr;
  uint64_t min_messages = 0;
  uint32_t evidence = 0;  // Evidence bits that must all be set
  // Seen by the sink of this ledger.sink_id. Only the PostgreSQL store
  // keeps per-sink rows and filters by it; the other stores ignore it and
  // Ledger resolves it for them (its own sink_id: everything, another:
  // nothing). Matches() ignores it.
  std::optional<std::string> sink;
  // Order of the key; ties by ascending IP. ParseQuery defaults to
  // descending, ascending for kIp.
  SortKey sort = SortKey::kMessages;
  bool ascending = false;
  // Page: the records strictly after `after` in this order (if set), then
  // skip offset of them, then at most limit. total ignores after.
  std::optional<Cursor> after;
  uint64_t offset = 0;
  uint64_t limit = 100;  // 0 = no limit
};

struct SourcePage {
  uint64_t total = 0;  // matching records before paging
  std::vector<SourceRecord> records;
};

// True when rec passes the query's filters (not q.after).
bool Matches(const SourceQuery& q, const SourceRecord& rec);
// True when a sorts before b under q's order.
bool SortsBefore(const SourceQuery& q, const SourceRecord& a,
                 const SourceRecord& b);
// Filters, sorts and pages a set of records in memory (the reference
// semantics every Store must reproduce).
// True when rec comes after q.after in q's order (always, without a cursor).
bool AfterCursor(const SourceQuery& q, const SourceRecord& rec);
SourcePage RunQuery(const SourceQuery& q, std::vector<SourceRecord> all);

// Builds a query from URL-style parameters: since, until (Unix seconds or
// RFC 3339 UTC "2024-05-01T12:00:00Z"), cidr, min_messages, evidence
// (comma-separated names), sink (a sink_id), sort, order (asc|desc), after (a
// cursor: FormatCursor of the previous page's last record), offset, limit.
// Other parameters are errors unless listed in other_keys. limit above
// max_limit is an error (max_limit 0 = no cap; limit=0 then means "all").
using Params = std::multimap<std::string, std::string>;
base::Result<SourceQuery> ParseQuery(const Params& params,
                                     const std::vector<std::string>& other_keys,
                                     uint64_t default_limit,
                                     uint64_t max_limit);

// The prefix length of c counted over the 128-bit (IPv4-mapped) form.
int CidrBits128(const base::Cidr& c);

// Parses Unix seconds or an RFC 3339 UTC timestamp.
base::Result<double> ParseTime(std::string_view text);
// Formats Unix seconds as RFC 3339 UTC with seconds ("2024-05-01T12:00:00Z").
std::string FormatTime(double unix_seconds);

}  // namespace ledger
