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
  double flush_interval = 1;              // seconds between batch commits
  double retention_days = 90;             // expire records not seen for this
  int64_t max_pending_bytes = 256 << 20;  // memory bound while store fails
};

}  // namespace ledger
