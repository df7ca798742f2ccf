// One writer connection's share of a batch, in one transaction (see
// postgres_store.h): the (sink_id, part) sequence mark, row locks, merge,
// COPY into the staging table, insert, update, attribution, hourly rows,
// totals, COMMIT.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>

#include "ledger/hourly_sql.h"
#include "ledger/postgres_sql.h"

namespace ledger {

int WriterPartition(const base::IpAddress& ip, int parts) {
  if (parts <= 1) return 0;
  // FNV-1a over the 16 address bytes: stable across builds and runs (the
  // marks in sink_batches depend on it), spread over low and high bytes.
  uint64_t h = 14695981039346656037ull;
  for (uint8_t b : ip.bytes()) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return int(h % uint64_t(parts));
}

}  // namespace ledger

namespace ledger::pg {
namespace {

base::Status Rollback(PGconn* c, base::Status s) {
  Exec(c, "ROLLBACK");
  return s;
}

// COMMIT whose reply may be lost (the test hook can cut it there).
base::Status Commit(PGconn* c, const PostgresOptions& o, int part) {
  if (!PQsendQuery(c, "COMMIT")) return ConnError(c, "COMMIT not sent");
  if (o.after_commit_sent) o.after_commit_sent(part, PQsocket(c));
  base::Status s;
  while (PGresult* r = PQgetResult(c)) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && s.ok()) {
      s = base::Status::Error("postgresql: COMMIT outcome unknown: " +
                              Trim(PQresultErrorMessage(r)));
    }
    PQclear(r);
  }
  if (s.ok() && PQstatus(c) != CONNECTION_OK) {
    s = ConnError(c, "COMMIT outcome unknown");
  }
  return s;
}

// The marks of parts 0 .. $2-1 of sink $1 made at $3 where missing, in part
// order (two parts seeding at once wait on each other, never deadlock).
const char* const kSeedSql =
    "INSERT INTO sink_batches (sink_id, part, seq) SELECT $1, g, $3::bigint "
    "FROM generate_series(0, $2::int - 1) g ORDER BY g ON CONFLICT (sink_id, "
    "part) DO NOTHING";

}  // namespace

const char* const kMarkSql =
    "INSERT INTO sink_batches (sink_id, part, seq) VALUES ($1, $2, $3) ON "
    "CONFLICT (sink_id, part) DO UPDATE SET seq = EXCLUDED.seq, committed_at "
    "= now() WHERE sink_batches.seq < EXCLUDED.seq";

base::Status SinkMarks(PGconn* c, const std::string& sink_id, int parts,
                       uint64_t* lo, uint64_t* hi) {
  if (auto s = Exec(c, "BEGIN"); !s.ok()) return s;
  auto fail = [&](base::Status s) { return Rollback(c, s); };
  auto rows = Run(c,
                  "SELECT part, seq FROM sink_batches WHERE sink_id = $1 "
                  "ORDER BY part FOR UPDATE",
                  {sink_id.c_str()});
  if (!rows.ok()) return fail(rows.status());
  int had = PQntuples(rows->get());
  *lo = had == 0 ? 0 : UINT64_MAX;
  *hi = 0;
  for (int i = 0; i < had; ++i) {
    uint64_t v = std::strtoull(PQgetvalue(rows->get(), i, 1), nullptr, 10);
    *lo = std::min(*lo, v);
    *hi = std::max(*hi, v);
  }
  if (had != 0 && had != parts && *lo != *hi) {
    // Some parts committed the last batch and the others not: it can only
    // be finished by the same partition of its addresses.
    return fail(base::Status::Error(
        "ledger.writer_connections: batch " + std::to_string(*hi) +
        " of sink '" + sink_id + "' was committed by only some of its " +
        std::to_string(had) +
        " writer connections (the sink stopped during it); start with "
        "writer_connections = " +
        std::to_string(had) + " once to finish it, then change it"));
  }
  // Another number of parts than before with every old mark equal:
  // nothing is half done, and the new parts start at that mark. (A fresh
  // sink has no marks: its first batch makes them, ApplyPart.)
  if (had != 0 && had != parts) {
    std::string all = std::to_string(*hi), n = std::to_string(parts);
    auto del =
        Run(c, "DELETE FROM sink_batches WHERE sink_id = $1 AND part >= $2",
            {sink_id.c_str(), n.c_str()});
    if (!del.ok()) return fail(del.status());
    auto ins = Run(c, kSeedSql, {sink_id.c_str(), n.c_str(), all.c_str()});
    if (!ins.ok()) return fail(ins.status());
  }
  return Exec(c, "COMMIT");
}

base::Status ApplyPart(PGconn* c, const PostgresOptions& o, const PartBatch& b,
                       bool* raced, uint64_t* created) {
  std::string ips = "{";
  for (auto* d : b.sorted) AddElement(&ips, Hex(d->ip.bytes()));
  ips += '}';

  if (auto s = Exec(c, "BEGIN"); !s.ok()) return s;
  std::string seq = std::to_string(b.seq), part = std::to_string(b.part);
  if (b.seed_parts != 0) {
    // A fresh sink's first batch: every part's mark exists from the first
    // commit of any part on, so a stop between the parts' commits leaves
    // the others at 0 (SinkMarks sees the batch half done).
    std::string n = std::to_string(b.seed_parts);
    auto seed = Run(c, kSeedSql, {o.sink_id.c_str(), n.c_str(), "0"});
    if (!seed.ok()) return Rollback(c, seed.status());
  }
  auto mark = Run(c, kMarkSql, {o.sink_id.c_str(), part.c_str(), seq.c_str()});
  if (!mark.ok()) return Rollback(c, mark.status());
  if (std::strcmp(PQcmdTuples(mark->get()), "1") != 0) {
    Exec(c, "ROLLBACK");
    if (b.retrying) return {};  // the lost COMMIT did commit: done once
    return base::Status::Error(
        "ledger.sink_id: batch " + seq + " of sink '" + o.sink_id +
        "' is already in the database: another process uses this sink_id");
  }
  if (b.sorted.empty()) return Commit(c, o, b.part);  // the mark alone
  // Every existing row of the batch locked in address order, merged
  // here, staged by COPY; new rows inserted once, existing ones updated.
  auto cur = Run(c,
                 "SELECT " + std::string(kColumns) +
                     " FROM sources WHERE ip = ANY($1::bytea[]) ORDER BY ip "
                     "FOR UPDATE",
                 {ips.c_str()});
  if (!cur.ok()) return Rollback(c, cur.status());
  if (o.after_rows_locked) o.after_rows_locked(b.part, PQsocket(c));
  std::map<base::IpAddress, SourceRecord> stored;
  for (int i = 0; i < PQntuples(cur->get()); ++i) {
    SourceRecord r = Decode(cur->get(), i);
    stored.emplace(r.ip, std::move(r));
  }
  Totals add;
  HourlyBatch hours;
  std::string rows;
  for (auto* d : b.sorted) {
    auto it = stored.find(d->ip);
    bool is_new = it == stored.end();
    hours.Add(*d, is_new);
    SourceRecord rec;
    if (!is_new) rec = std::move(it->second);
    rec.ip = d->ip;
    MergeRecord(&rec, *d);
    AppendStageRow(&rows, rec, is_new, *d);
    add.sources += is_new;
    add.connections += d->connections;
    add.messages += d->messages;
    add.recipients += d->recipients;
    add.bytes += d->bytes;
    add.seconds_held += d->seconds_held;
  }
  if (auto s = Exec(c, kStageTableSql); !s.ok()) return Rollback(c, s);
  if (!PQsendQuery(c, StageCopySql().c_str())) {
    return Rollback(c, ConnError(c, "COPY not sent"));
  }
  if (Res r(PQgetResult(c)); PQresultStatus(r.get()) != PGRES_COPY_IN) {
    base::Status s = base::Status::Error(
        "postgresql: " +
        Trim(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c)));
    while (PGresult* x = PQgetResult(c)) PQclear(x);
    return Rollback(c, s);
  }
  if (auto s = PutCopy(c, rows); !s.ok()) return Rollback(c, s);
  auto ins = Run(c, StageInsertSql());
  if (!ins.ok()) return Rollback(c, ins.status());
  if (std::strtoull(PQcmdTuples(ins->get()), nullptr, 10) != add.sources) {
    // Another sink inserted one of our new addresses after our SELECT:
    // start again, and that row will be locked and merged like the rest.
    *raced = true;
    return Rollback(
        c, base::Status::Error("postgresql: a new address was inserted by "
                               "another sink during the batch"));
  }
  if (auto s = Run(c, StageUpdateSql()); !s.ok()) {
    return Rollback(c, s.status());
  }
  auto attr = Run(c, kStageSinksSql, {o.sink_id.c_str()});
  if (!attr.ok()) return Rollback(c, attr.status());
  // The rows every writer shares come last and in one order (this sink's
  // hours, ascending, then the totals row), held only until COMMIT: the
  // partitions' transactions run side by side up to here.
  if (auto s = hourly::PgAdd(c, o.sink_id, hours); !s.ok()) {
    return Rollback(c, s);
  }
  std::vector<std::string> t = {
      std::to_string(add.sources),  std::to_string(add.connections),
      std::to_string(add.messages), std::to_string(add.recipients),
      std::to_string(add.bytes),    Num(add.seconds_held)};
  auto tot = Run(c,
                 "UPDATE totals SET sources = sources + $1, connections = "
                 "connections + $2, messages = messages + $3, recipients = "
                 "recipients + $4, bytes = bytes + $5, seconds_held = "
                 "seconds_held + $6 WHERE id = 1",
                 {t[0].c_str(), t[1].c_str(), t[2].c_str(), t[3].c_str(),
                  t[4].c_str(), t[5].c_str()});
  if (!tot.ok()) return Rollback(c, tot.status());
  base::Status committed = Commit(c, o, b.part);
  if (committed.ok()) *created = add.sources;
  return committed;
}

}  // namespace ledger::pg
