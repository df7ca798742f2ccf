#include <algorithm>

#include "config/field_macros.h"

namespace config {

// The ledger's bounds. Inserted after the [ledger] rows of fields.cc, so
// the reference keeps one [ledger] table.
void AppendLedgerFields(std::vector<Field>* out) {
  std::vector<Field> f = {
      SPAMSINK_FIELD(ledger, max_sources, kInt64,
                     "Source records kept at most (SQLite store); beyond, "
                     "each new source evicts one of the least valuable of "
                     "the oldest-seen (no evidence first, then fewest "
                     "messages). 0: no cap."),
      SPAMSINK_FIELD(ledger, max_db_bytes, kInt64,
                     "Size budget of the SQLite database (pages in use); "
                     "once reached, each new source evicts one as above "
                     "and /healthz says so. 0: no budget."),
      SPAMSINK_FIELD(ledger, spill_path, kString,
                     "Spill file: records beyond max_pending_bytes while the "
                     "store fails, and what is not committed at exit with the "
                     "store down, are kept here and sent when the store is "
                     "back (at the next start at the latest), each once. "
                     "Empty: spamsink.spill beside db_path."),
      SPAMSINK_FIELD(ledger, max_spill_bytes, kInt64,
                     "Size bound of the spill file; beyond, records are "
                     "dropped (counted in "
                     "spamsink_ledger_sessions_dropped_total). 0: no spill "
                     "file."),
      SPAMSINK_FIELD(ledger, reputation_refresh, kDouble,
                     "Seconds between pulls of the fleet's reputation "
                     "(store = postgresql, tarpit on): each pull reads the "
                     "records any sink changed since the last, so a sender "
                     "met at one sink is known at this one within about "
                     "this plus flush_interval. 0: off (this sink's own "
                     "history only)."),
      SPAMSINK_FIELD(ledger, writer_connections, kInt,
                     "Connections this sink writes its batches on (store = "
                     "postgresql): each batch's addresses are split among "
                     "them by a hash of the address and committed side by "
                     "side, each part exactly once. More than 1 helps when "
                     "the database has cores to spare. Changed only "
                     "between clean stops (a sink stopped mid-batch must "
                     "finish it with the old number first; it says so)."),
      SPAMSINK_FIELD(ledger, ipv6_prefix, kInt,
                     "IPv6 sources are recorded per network of this many "
                     "bits (one host usually holds a /64); exports list the "
                     "networks, and server.max_connections_per_ip and the "
                     "tarpit's reputation count the network as one client. "
                     "128: per address. Needs a restart."),
      SPAMSINK_FIELD(ledger, hourly_retention_days, kDouble,
                     "Days the per-hour counts are kept: each source's "
                     "sessions and messages per hour (its timeline on the "
                     "console and in /api/v1/sources/{ip}/timeline) and the "
                     "sink's per hour (the Overview's last day)."),
  };
  SetRange(&f, "ledger.max_sources", 0, 1e12);
  SetRange(&f, "ledger.hourly_retention_days", 1, 3650);
  SetRange(&f, "ledger.ipv6_prefix", 32, 128);
  SetRange(&f, "ledger.max_db_bytes", 0, 1ll << 50);
  SetRange(&f, "ledger.max_spill_bytes", 0, 1ll << 50);
  SetRange(&f, "ledger.reputation_refresh", 0, 3600);
  SetRange(&f, "ledger.writer_connections", 1, 64);
  auto last = std::find_if(out->rbegin(), out->rend(), [](const Field& x) {
    return x.section == "ledger";
  });
  out->insert(last.base(), f.begin(), f.end());
}

}  // namespace config
