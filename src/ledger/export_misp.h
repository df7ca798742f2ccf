// The MISP feed (`spamsink export --format misp --output DIR`): the
// directory layout a MISP instance reads as a feed of type "MISP Feed"
// (MISP core format, draft-dulaunoy-misp-core-format; the feed layout of
// PyMISP's feed generator):
//   DIR/<event uuid>.json  {"Event": {...}}: one event per UTC day of the
//                          sources' last_seen, one ip-src attribute each
//                          (first_seen, last_seen, comment, evidence tags)
//   DIR/manifest.json      {"<uuid>": {info, date, timestamp, Orgc, Tag,
//                          analysis, threat_level_id}, ...}
//   DIR/hashes.csv         "<md5 of the attribute value>,<event uuid>"
// Event and attribute uuids are derived from the day and the address, so a
// later export of the same day replaces the event (newer timestamp)
// instead of adding one.
#ifndef SPAMSINK_LEDGER_EXPORT_MISP_H_
#define SPAMSINK_LEDGER_EXPORT_MISP_H_

#include <string>
#include <string_view>
#include <vector>

#include "base/ip.h"
#include "base/status.h"
#include "ledger/export.h"
#include "ledger/query.h"
#include "ledger/source.h"
#include "ledger/store.h"

namespace ledger {

struct MispOptions {
  std::string org = "spamsink";  // the creator organisation's name
  double now = 0;                // Unix seconds: timestamps of the export
  std::vector<base::Cidr> exempt;
  int record_v6_prefix = 128;  // an IPv6 record wider than /128 is a CIDR
};

// Writes the feed of what q selects (read in last_seen order, one event
// file open at a time) into dir, which is created if missing. Files are
// written beside their names and renamed. Returns how many events.
base::Result<size_t> WriteMispFeed(Store* store, SourceQuery q,
                                   const MispOptions& o,
                                   const std::string& dir);

// The feed over a stream (the API's /api/v1/feeds/misp/..., what a MISP
// instance's feed fetcher requests): the same files, each written as the
// store is scanned. manifest.json and hashes.csv of what q selects:
enum class MispFile { kManifest, kHashes };
base::Status StreamMispIndex(Store* store, const SourceQuery& q,
                             const MispOptions& o, MispFile f,
                             const Sink& sink);
// The event uuid of a UTC day ("2026-11-27"), and back: the day among the
// kMispDays before o.now whose event has this uuid, or "".
inline constexpr int kMispDays = 3660;
std::string EventUuid(const MispOptions& o, const std::string& day);
std::string MispEventDay(const MispOptions& o, std::string_view uuid);
// The event of day: the sources of q last seen that day (no attribute
// when there is none).
base::Status StreamMispEvent(Store* store, SourceQuery q, const MispOptions& o,
                             const std::string& day, const Sink& sink);

// The attribute value of a record: the address, or its network with a
// record_v6_prefix below 128 (MISP's ip-src takes CIDR notation).
std::string MispValue(const SourceRecord& r, int record_v6_prefix);
// The lower-case hex MD5 (RFC 1321) of text: hashes.csv's first column.
std::string Md5Hex(std::string_view text);
// MISP's seen-time form: "2026-11-27T15:54:07.000000+00:00".
std::string MispTime(double unix_seconds);

}  // namespace ledger

#endif  // SPAMSINK_LEDGER_EXPORT_MISP_H_
