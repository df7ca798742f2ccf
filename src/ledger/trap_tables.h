// Where TrapLedger keeps its tables: SQLite (the ledger's file, a
// connection of its own) or the fleet's PostgreSQL database. Internal to
// ledger/; TrapLedger owns the queue, the writer thread and the token
// checks, a TrapTables only stores verified facts and answers queries.
// Both give the same answers for the same facts (trap_ledger_test runs
// every case on both).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "ledger/postgres_store.h"
#include "ledger/trap_ledger.h"

namespace ledger {

// One recipient at a trap domain, its token already checked.
struct TrapHit {
  std::string sender;
  double time = 0;
  std::string domain;
  bool valid = false;  // a valid token: ref and minute name its harvest
  uint32_t ref = 0;
  int64_t minute = 0;
};

class TrapTables {
 public:
  virtual ~TrapTables() = default;
  // One transaction: every harvest page and hit, or none (then an error).
  virtual base::Status Commit(const std::vector<traps::Harvest>& harvests,
                              const std::vector<TrapHit>& hits) = 0;
  virtual base::Result<std::vector<Harvester>> Harvesters(size_t limit) = 0;
  virtual base::Result<std::vector<TrapLink>> LinksOf(
      std::string_view sender_ip) = 0;
  virtual base::Result<std::vector<TrapDomain>> Domains() = 0;
  virtual base::Result<std::vector<std::string>> HarvesterIps() = 0;
  // Deletes links whose last spam, and unlinked harvests whose last page,
  // are before cutoff (Unix seconds); returns the rows deleted.
  virtual base::Result<uint64_t> Expire(double cutoff) = 0;
};

// The tables in the SQLite file db_path (created unless read_only).
base::Result<std::unique_ptr<TrapTables>> OpenSqliteTrapTables(
    const std::string& db_path, bool read_only);

// The tables in the fleet's database, shared by every sink: created or
// migrated under an advisory lock (own version table, trap_schema), one
// connection for the writer and one for queries, each reconnecting after a
// failure. Refuses a trap schema newer than this build's.
base::Result<std::unique_ptr<TrapTables>> OpenPostgresTrapTables(
    const PostgresOptions& options);

// The newest trap schema version in PostgreSQL (table trap_schema).
inline constexpr int kPostgresTrapSchemaVersion = 1;

}  // namespace ledger
