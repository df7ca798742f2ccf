// The hourly tables (ledger/hourly.h) in SQLite and PostgreSQL: private to
// the two stores. Writes run inside the caller's transaction; the caller
// holds the connection's lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/status.h"
#include "ledger/hourly.h"

struct sqlite3;
struct pg_conn;

namespace ledger::hourly {

// SQLite schema 4 / PostgreSQL schema 3: the tables and their indexes.
extern const char* const kSqliteMigration;
extern const char* const kPostgresMigration;

// Upserts the batch's rows.
base::Status SqliteAdd(sqlite3* db, const HourlyBatch& b);
// Deletes the per-source rows of ips (evicted by a bound: their rows must
// not keep the space the eviction frees).
base::Status SqliteForget(sqlite3* db, const std::vector<base::IpAddress>& ips);
// ip null: the sink's hours; else that source's. Oldest first.
base::Result<std::vector<HourCounts>> SqliteRead(sqlite3* db,
                                                 const base::IpAddress* ip,
                                                 double since);
// In its own transaction: at most kHourlyExpireLimit per-source rows, and
// the per-sink rows, older than cutoff. Returns the rows deleted.
base::Result<uint64_t> SqliteExpire(sqlite3* db, double cutoff);

// The same for PostgreSQL; per-sink rows are keyed by sink_id.
base::Status PgAdd(pg_conn* c, const std::string& sink_id,
                   const HourlyBatch& b);
base::Result<std::vector<HourCounts>> PgRead(pg_conn* c,
                                             const std::string& sink_id,
                                             const base::IpAddress* ip,
                                             double since);
base::Result<uint64_t> PgExpire(pg_conn* c, double cutoff);

}  // namespace ledger::hourly
