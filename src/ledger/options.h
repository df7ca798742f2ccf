// The ledger's settings ([ledger] in the configuration): one struct with
// documented in-class defaults. Plain data; config/ parses and validates it.
#pragma once

#include <cstdint>
#include <string>

namespace ledger {

struct Options {
  bool enabled = true;
  std::string store = "sqlite";         // "sqlite" | "postgresql"
  std::string db_path = "spamsink.db";  // SQLite file; relative to cwd
  // store = "postgresql": a libpq connection string or postgresql:// URI
  // (no password in it: it may be logged), a file holding the password
  // (else libpq's PGPASSWORD or ~/.pgpass), and this sink's name in the
  // shared database (empty: the host name). Never two processes per name.
  std::string postgresql_url;
  std::string postgresql_password_file;
  std::string sink_id;
  double flush_interval = 1;   // seconds between batch commits
  double retention_days = 90;  // expire records not seen for this
  // Hourly rows (ledger/hourly.h) older than this many days are deleted.
  double hourly_retention_days = 14;
  // Memory bound for records while the store fails (0: none); -1: derived
  // from server.memory_limit by spamsink serve (app/memory_budget.h), and
  // 256 MiB where nothing derives it.
  int64_t max_pending_bytes = -1;
  // Beyond max_pending_bytes, and at exit with the store down, records go
  // to this file (ledger/spill.h) and are sent once the store is back (at
  // the next start at the latest). Empty: spamsink.spill in db_path's
  // directory. max_spill_bytes bounds it (0: spill off: records beyond
  // max_pending_bytes are dropped and counted).
  std::string spill_path;
  int64_t max_spill_bytes = int64_t(1) << 30;
  // store = "postgresql" with the tarpit on: seconds between pulls of the
  // fleet's changes into this sink's reputation (ChangeFollower); 0: off.
  double reputation_refresh = 2;
  // store = "postgresql": writer connections a batch is split over by
  // address (PostgresOptions::writer_connections).
  int writer_connections = 1;
  // SQLite store bounds (SqliteOptions); 0: none. The PostgreSQL store has
  // neither: max_sources is ignored there, and config refuses a
  // max_db_bytes with store = "postgresql".
  int64_t max_sources = 10'000'000;
  int64_t max_db_bytes = 0;
  // IPv6 sources are recorded per network of this many bits: a host is
  // usually given a /64 and can rotate through all of it, one record per
  // address would let it fill the disk. 128 keeps every address.
  int ipv6_prefix = 64;
};

// The refusal of a PostgreSQL setting by a binary without the store (cmake
// -DSPAMSINK_POSTGRES=OFF, or the appliance's stub libpq.so.5); empty when
// built_with_postgres or when neither ledger.store = "postgresql" nor
// ledger.postgresql_url is set. config/ Validate calls it.
inline std::string PostgresSupportError(const Options& o,
                                        bool built_with_postgres) {
  if (built_with_postgres) return {};
  const char* key = o.store == "postgresql"     ? "ledger.store"
                    : !o.postgresql_url.empty() ? "ledger.postgresql_url"
                                                : nullptr;
  if (!key) return {};
  return std::string(key) +
         ": this build has no PostgreSQL support (built with "
         "-DSPAMSINK_POSTGRES=OFF, or its libpq is spamsink's stub, as in the "
         "appliance); use ledger.store = "
         "\"sqlite\" or a build with PostgreSQL";
}

}  // namespace ledger
