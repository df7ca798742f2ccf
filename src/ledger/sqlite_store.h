// The default Store: one SQLite file in WAL mode, schema versioned through
// PRAGMA user_version with forward-only migrations. Writes and reads use
// separate connections so that API queries never wait for a batch commit.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "ledger/store.h"

namespace ledger {

struct SqliteOptions {
  // Open an existing database for reading only (the export subcommand):
  // no migration, no writes; Apply and Expire fail.
  bool read_only = false;
  int cache_mib = 32;  // page cache per connection
  int busy_timeout_ms = 5000;
  // Bounds (0: none). A commit that takes the store above max_sources, or
  // adds sources while the database's used pages reach max_db_bytes,
  // evicts as many of the least valuable records: among the oldest-seen
  // (64 per eviction), those without evidence first, then fewest messages,
  // then oldest. At most kMaxEvictPerCommit beyond the batch's new sources
  // per commit, so lowering a cap shrinks the store over several commits.
  uint64_t max_sources = 0;
  uint64_t max_db_bytes = 0;
};
inline constexpr uint64_t kMaxEvictPerCommit = 10000;

// The newest schema version this build knows.
inline constexpr int kSchemaVersion = 5;
// The oldest schema a read-only open (spamsink export) still reads; fields
// an older schema lacks read as zero.
inline constexpr int kMinReadableVersion = 1;

// Opens or creates the database at path and migrates it to kSchemaVersion.
// Fails on a database written by a newer version.
base::Result<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& path, const SqliteOptions& options = {});

}  // namespace ledger
