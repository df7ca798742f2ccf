// The ledger's settings ([ledger] in the configuration): one struct with
// documented in-class defaults. Plain data; config/ parses and validates it.
#pragma once

#include <cstdint>
#include <string>

namespace ledger {

struct Options {
  bool enabled = true;
  std::string db_path = "spamsink.db";    // SQLite file; relative to cwd
  double flush_interval = 1;              // seconds between batch commits
  double retention_days = 90;             // expire records not seen for this
  int64_t max_pending_bytes = 256 << 20;  // memory bound while store fails
};

}  // namespace ledger
