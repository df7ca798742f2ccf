// The STIX 2.1 export (format "stix"): one bundle whose objects are one
// `indicator` per source, written from the specification (STIX 2.1, OASIS
// Standard, sections 2.9 identifiers, 3.2 timestamps, 4.7 indicator, 9
// patterning). Streamed: a record in, an object out (export.cc calls these
// pieces around its scan).
#ifndef SPAMSINK_LEDGER_EXPORT_STIX_H_
#define SPAMSINK_LEDGER_EXPORT_STIX_H_

#include <string>

#include "ledger/source.h"

namespace ledger {

// How long after a source was last seen its indicator stays valid.
inline constexpr double kStixValidSeconds = 7 * 86400;

// `{"type":"bundle","id":"bundle--<uuid>","objects":[`; the bundle's id is
// derived from now (a new bundle per export).
std::string StixBundleHead(double now);
// One indicator object (no separator). Its id is derived from the address
// alone, so each export of the same source carries the same id with a
// newer `modified` (a consumer updates it instead of adding another);
// created = first_seen, modified = max(last_seen, first_seen), valid_from =
// first_seen, valid_until = last_seen + kStixValidSeconds. v6_prefix: the
// ledger's ipv6_prefix; an IPv6 record stands for its network this wide,
// so the pattern's value is the network in CIDR form (STIX 2.1 allows it
// for ipv6-addr) unless it is 128.
std::string StixIndicator(const SourceRecord& r, int v6_prefix = 128);
// `]}` and a newline.
std::string StixBundleTail();
// A STIX timestamp: RFC 3339, UTC, "Z", milliseconds
// ("2026-11-27T15:54:07.000Z").
std::string StixTime(double unix_seconds);
// "<type>--<uuid>" with a version-4-shaped UUID taken from a 128-bit hash
// of key (deterministic; RFC 4122 variant and version bits set).
std::string StixId(std::string_view type, std::string_view key);

}  // namespace ledger

#endif  // SPAMSINK_LEDGER_EXPORT_STIX_H_
