// PostgreSQL plumbing shared by the store and its tests: connections,
// parameters as text, array literals, the schema and its migrations. Only
// ledger/ includes this (it brings in libpq).
#pragma once

#include <libpq-fe.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "ledger/postgres_store.h"
#include "ledger/query.h"
#include "ledger/source.h"

namespace ledger::pg {

inline constexpr const char* kSetting = "ledger.postgresql_url";

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Res = std::unique_ptr<PGresult, ResultDeleter>;
struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;

// The columns of sources in select order, and their count.
extern const char* const kColumns;
inline constexpr int kNumColumns = 30;

std::string Trim(const char* s);
base::Status ConnError(PGconn* c, const std::string& what);
// bytea text form ("\\x0a0b..") of an address, and back.
std::string Hex(const std::array<uint8_t, 16>& b);
base::IpAddress ParseIp(const char* text);
// A double as text that reads back to the same value.
std::string Num(double v);
// Appends v as one quoted element to an array literal that starts "{".
void AddElement(std::string* array, const std::string& v);

SourceRecord Decode(PGresult* res, int row);
// The batch path: merged rows go by COPY into a temporary staging table
// (this connection's own, emptied at each COMMIT), then one INSERT of the
// new rows, one UPDATE of the existing ones and one per-sink upsert read
// from it. Text COPY: no array literals to build or parse.
// CREATE TEMP TABLE IF NOT EXISTS for the staging table (run per batch: a
// reconnect loses it), and the transaction's join settings.
extern const char* const kStageTableSql;
// COPY ... FROM STDIN into the staging table, in AppendStageRow's order.
const std::string& StageCopySql();
// Appends one staging row: the merged record, whether it is new, and the
// batch's own delta (for the per-sink attribution).
void AppendStageRow(std::string* out, const SourceRecord& merged, bool is_new,
                    const SourceRecord& delta);
// INSERT of the staged new rows (ON CONFLICT DO NOTHING: its row count
// tells whether another sink inserted one of them meanwhile).
const std::string& StageInsertSql();
// UPDATE of sources from the staged existing rows.
const std::string& StageUpdateSql();
// Per-sink upsert from the staged deltas; $1 is the sink_id.
extern const char* const kStageSinksSql;
// Sends buf as the data of a COPY already started on c, then ends it.
base::Status PutCopy(PGconn* c, const std::string& buf);

// The SELECT of q's page; its filter (" WHERE ...", or "") in *where and
// the filter's parameters in *args.
std::string SelectSql(const SourceQuery& q, std::vector<std::string>* args,
                      std::string* where);

base::Result<Conn> Connect(const PostgresOptions& o);
// Whether a failed Connect (its error) met no server at all: down, not
// listening, no route, a name that does not resolve. Then a sink keeps
// serving and connects later; anything else (a wrong password, an unknown
// database or role, a TLS failure, a bad connection string) is a setting
// to fix, and the sink refuses to start.
bool Unreachable(const PostgresOptions& o, const std::string& error);
// Runs sql with text parameters; an error unless COMMAND_OK / TUPLES_OK.
base::Result<Res> Run(PGconn* c, const std::string& sql,
                      const std::vector<const char*>& params = {});
base::Status Exec(PGconn* c, const std::string& sql);
// Migrates c's database to version target; refuses a newer one.
base::Status Migrate(PGconn* c, int target);

// One writer connection's share of a batch (postgres_batch.cc).
struct PartBatch {
  int part = 0;      // the writer connection (WriterPartition)
  uint64_t seq = 0;  // the batch's sequence number, the same in every part
  // A retry of a batch that failed: a part whose mark already holds seq
  // committed it then, and commits nothing now.
  bool retrying = false;
  int seed_parts = 0;  // the sink's first batch: the number of parts
  std::vector<const SourceRecord*> sorted;  // by address: the lock order
};
// The mark of (sink_id $1, part $2) moved to seq $3; no row when the mark
// already holds seq or a later one.
extern const char* const kMarkSql;
// Reads sink_id's marks (one per writer part) into [*lo, *hi] and makes
// sure there are exactly `parts` of them (none for a fresh sink: its first
// batch makes them, PartBatch::seed_parts). A changed number of parts is
// taken over when every old mark is equal (nothing half committed), and
// refused, naming ledger.writer_connections, when not.
base::Status SinkMarks(PGconn* c, const std::string& sink_id, int parts,
                       uint64_t* lo, uint64_t* hi);
// Commits b in one transaction on c (mark, row locks, merge, COPY, insert,
// update, attribution, hours, totals). *raced: another sink inserted one of
// b's new addresses meanwhile and the transaction was rolled back: running
// it again succeeds. *created: rows inserted, once committed.
base::Status ApplyPart(PGconn* c, const PostgresOptions& o, const PartBatch& b,
                       bool* raced, uint64_t* created);

}  // namespace ledger::pg
