// The MISP feed over the API (ledger/export_misp.h), the paths a MISP
// instance's feed fetcher requests under the feed's URL
// (https://sink:8025/api/v1/feeds/misp):
//   GET /api/v1/feeds/misp/manifest.json   {"<event uuid>": {...}, ...}
//   GET /api/v1/feeds/misp/hashes.csv      md5(value),<event uuid>
//   GET /api/v1/feeds/misp/<uuid>.json     {"Event": {...}} of one day
// Each streamed as the store is scanned, behind the API's bearer token.
// Parameters: org (the creator organisation; it names the uuids, so a
// feed keeps it) and the source filters of /api/v1/sources but sink.
// The STIX bundle is /api/v1/export?format=stix.
#include <algorithm>

#include "api/handlers.h"
#include "ledger/export_misp.h"
#include "ledger/ledger.h"

namespace api {

inline constexpr size_t kUuidLength = 36;

Response Api::MispFeed(const std::string& file, const Request& r) const {
  if (ledger_ == nullptr) return ErrorResponse(503, "ledger disabled");
  ledger::MispOptions o;
  ledger::Params filters;
  for (const auto& [key, value] : r.params) {
    if (key == "org") {
      if (value.empty() || value.size() > 255) {
        return ErrorResponse(400, "org: 1 to 255 bytes");
      }
      o.org = value;
    } else if (key == "sink") {
      return ErrorResponse(400, "sink: not a filter of the MISP feed");
    } else {
      filters.emplace(key, value);
    }
  }
  auto q = ledger::ParseQuery(filters, {}, 0, 0);
  if (!q.ok()) return ErrorResponse(400, q.error());
  o.now = clock_->WallSeconds();
  o.record_v6_prefix = ledger_->ipv6_prefix();
  {
    std::lock_guard lock(exempt_mu_);
    o.exempt = options_.exempt;
  }
  std::string day;
  if (file != "manifest.json" && file != "hashes.csv") {
    if (file.size() != kUuidLength + 5 || !file.ends_with(".json")) {
      return ErrorResponse(404, "no such feed file: " + file);
    }
    day = ledger::MispEventDay(o, file.substr(0, kUuidLength));
    if (day.empty()) return ErrorResponse(404, "no such event: " + file);
  }
  // A store that cannot answer is a 503 before any byte is sent.
  if (auto t = ledger_->GetStats(); !t.ok()) {
    return ErrorResponse(503, "store: " + t.error());
  }
  Response resp;
  resp.content_type =
      file == "hashes.csv" ? "text/csv; charset=utf-8" : "application/json";
  ledger::Store* store = ledger_->store();
  resp.stream = [store, file, day, o, q = *q](const ledger::Sink& sink) {
    if (!day.empty()) return ledger::StreamMispEvent(store, q, o, day, sink);
    return ledger::StreamMispIndex(store, q, o,
                                   file == "hashes.csv"
                                       ? ledger::MispFile::kHashes
                                       : ledger::MispFile::kManifest,
                                   sink);
  };
  return resp;
}

}  // namespace api
