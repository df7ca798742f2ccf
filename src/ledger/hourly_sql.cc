#include "ledger/hourly_sql.h"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <cstdlib>
#include <memory>

#include "ledger/postgres_sql.h"

namespace ledger::hourly {
namespace {

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

base::Status Error(sqlite3* db) {
  return base::Status::Error(std::string("sqlite: ") + sqlite3_errmsg(db));
}

base::Status Prepare(sqlite3* db, const char* sql, Stmt* out) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    return Error(db);
  }
  out->reset(st);
  return {};
}

base::Status Step(sqlite3* db, sqlite3_stmt* st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? base::Status() : Error(db);
}

base::Status SqliteExec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : sqlite3_errmsg(db);
    sqlite3_free(msg);
    return base::Status::Error("sqlite: " + m);
  }
  return {};
}

}  // namespace

const char* const kSqliteMigration = R"sql(
CREATE TABLE source_hours (
  ip BLOB NOT NULL,
  hour INTEGER NOT NULL,                  -- UTC seconds, multiple of 3600
  sessions INTEGER NOT NULL,
  messages INTEGER NOT NULL,
  PRIMARY KEY (ip, hour)
) WITHOUT ROWID;
CREATE INDEX source_hours_by_hour ON source_hours (hour);
CREATE TABLE hours (
  hour INTEGER PRIMARY KEY,
  sessions INTEGER NOT NULL,
  messages INTEGER NOT NULL,
  new_sources INTEGER NOT NULL
);
)sql";

const char* const kPostgresMigration = R"sql(
CREATE TABLE source_hours (
  ip bytea NOT NULL,
  hour bigint NOT NULL,
  sessions bigint NOT NULL,
  messages bigint NOT NULL,
  PRIMARY KEY (ip, hour)
);
CREATE INDEX source_hours_by_hour ON source_hours (hour);
CREATE TABLE sink_hours (
  sink_id text NOT NULL,
  hour bigint NOT NULL,
  sessions bigint NOT NULL,
  messages bigint NOT NULL,
  new_sources bigint NOT NULL,
  PRIMARY KEY (sink_id, hour)
);
CREATE INDEX sink_hours_by_hour ON sink_hours (hour);
)sql";

base::Status SqliteAdd(sqlite3* db, const HourlyBatch& b) {
  Stmt src, sink;
  if (auto s = Prepare(db,
                       "INSERT INTO source_hours VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (ip, hour) DO UPDATE SET sessions = "
                       "sessions + excluded.sessions, messages = messages + "
                       "excluded.messages",
                       &src);
      !s.ok()) {
    return s;
  }
  for (const auto& r : b.rows()) {
    sqlite3_bind_blob(src.get(), 1, r.ip.bytes().data(), 16, SQLITE_STATIC);
    sqlite3_bind_int64(src.get(), 2, r.hour);
    sqlite3_bind_int64(src.get(), 3, int64_t(r.sessions));
    sqlite3_bind_int64(src.get(), 4, int64_t(r.messages));
    if (auto s = Step(db, src.get()); !s.ok()) return s;
  }
  if (auto s = Prepare(db,
                       "INSERT INTO hours VALUES (?, ?, ?, ?) ON CONFLICT "
                       "(hour) DO UPDATE SET sessions = sessions + "
                       "excluded.sessions, messages = messages + "
                       "excluded.messages, new_sources = new_sources + "
                       "excluded.new_sources",
                       &sink);
      !s.ok()) {
    return s;
  }
  for (const auto& [hour, h] : b.hours()) {
    sqlite3_bind_int64(sink.get(), 1, hour);
    sqlite3_bind_int64(sink.get(), 2, int64_t(h.sessions));
    sqlite3_bind_int64(sink.get(), 3, int64_t(h.messages));
    sqlite3_bind_int64(sink.get(), 4, int64_t(h.new_sources));
    if (auto s = Step(db, sink.get()); !s.ok()) return s;
  }
  return {};
}

base::Status SqliteForget(sqlite3* db,
                          const std::vector<base::IpAddress>& ips) {
  Stmt del;
  if (auto s = Prepare(db, "DELETE FROM source_hours WHERE ip = ?", &del);
      !s.ok()) {
    return s;
  }
  for (const auto& ip : ips) {
    sqlite3_bind_blob(del.get(), 1, ip.bytes().data(), 16, SQLITE_STATIC);
    if (auto s = Step(db, del.get()); !s.ok()) return s;
  }
  return {};
}

base::Result<std::vector<HourCounts>> SqliteRead(sqlite3* db,
                                                 const base::IpAddress* ip,
                                                 double since) {
  Stmt st;
  if (auto s = Prepare(db,
                       ip ? "SELECT hour, sessions, messages, 0 FROM "
                            "source_hours WHERE ip = ?2 AND hour >= ?1 "
                            "ORDER BY hour"
                          : "SELECT hour, sessions, messages, new_sources "
                            "FROM hours WHERE hour >= ?1 ORDER BY hour",
                       &st);
      !s.ok()) {
    return s;
  }
  sqlite3_bind_int64(st.get(), 1, HourOf(since));
  if (ip) sqlite3_bind_blob(st.get(), 2, ip->bytes().data(), 16, SQLITE_STATIC);
  std::vector<HourCounts> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    HourCounts h;
    h.hour = sqlite3_column_int64(st.get(), 0);
    h.sessions = uint64_t(sqlite3_column_int64(st.get(), 1));
    h.messages = uint64_t(sqlite3_column_int64(st.get(), 2));
    h.new_sources = uint64_t(sqlite3_column_int64(st.get(), 3));
    out.push_back(h);
  }
  if (rc != SQLITE_DONE) return Error(db);
  return out;
}

base::Result<uint64_t> SqliteExpire(sqlite3* db, double cutoff) {
  if (auto s = SqliteExec(db, "BEGIN IMMEDIATE"); !s.ok()) return s;
  auto fail = [&](base::Status s) {
    SqliteExec(db, "ROLLBACK");
    return s;
  };
  Stmt src, sink;
  if (auto s = Prepare(db,
                       "DELETE FROM source_hours WHERE (ip, hour) IN (SELECT "
                       "ip, hour FROM source_hours WHERE hour < ?1 LIMIT ?2)",
                       &src);
      !s.ok()) {
    return fail(s);
  }
  sqlite3_bind_double(src.get(), 1, cutoff);
  sqlite3_bind_int64(src.get(), 2, int64_t(kHourlyExpireLimit));
  if (auto s = Step(db, src.get()); !s.ok()) return fail(s);
  uint64_t n = uint64_t(sqlite3_changes(db));
  if (auto s = Prepare(db, "DELETE FROM hours WHERE hour < ?1", &sink);
      !s.ok()) {
    return fail(s);
  }
  sqlite3_bind_double(sink.get(), 1, cutoff);
  if (auto s = Step(db, sink.get()); !s.ok()) return fail(s);
  n += uint64_t(sqlite3_changes(db));
  src.reset();
  sink.reset();
  if (auto s = SqliteExec(db, "COMMIT"); !s.ok()) return fail(s);
  return n;
}

base::Status PgAdd(pg_conn* c, const std::string& sink_id,
                   const HourlyBatch& b) {
  if (b.rows().empty()) return {};
  std::string ips = "{", hours = "{", sessions = "{", messages = "{";
  for (const auto& r : b.rows()) {
    pg::AddElement(&ips, pg::Hex(r.ip.bytes()));
    pg::AddElement(&hours, std::to_string(r.hour));
    pg::AddElement(&sessions, std::to_string(r.sessions));
    pg::AddElement(&messages, std::to_string(r.messages));
  }
  ips += '}', hours += '}', sessions += '}', messages += '}';
  // Rows in the batch's address order (the order its source rows were
  // locked in), so that two sinks never wait on each other's hour rows.
  auto r =
      pg::Run(c,
              "INSERT INTO source_hours (ip, hour, sessions, messages) "
              "SELECT * FROM unnest($1::bytea[], $2::bigint[], "
              "$3::bigint[], $4::bigint[]) ON CONFLICT (ip, hour) DO "
              "UPDATE SET sessions = source_hours.sessions + "
              "EXCLUDED.sessions, messages = source_hours.messages + "
              "EXCLUDED.messages",
              {ips.c_str(), hours.c_str(), sessions.c_str(), messages.c_str()});
  if (!r.ok()) return r.status();
  for (const auto& [hour, h] : b.hours()) {
    std::vector<std::string> v = {
        std::to_string(hour), std::to_string(h.sessions),
        std::to_string(h.messages), std::to_string(h.new_sources)};
    auto s = pg::Run(c,
                     "INSERT INTO sink_hours VALUES ($1, $2, $3, $4, $5) ON "
                     "CONFLICT (sink_id, hour) DO UPDATE SET sessions = "
                     "sink_hours.sessions + EXCLUDED.sessions, messages = "
                     "sink_hours.messages + EXCLUDED.messages, new_sources = "
                     "sink_hours.new_sources + EXCLUDED.new_sources",
                     {sink_id.c_str(), v[0].c_str(), v[1].c_str(), v[2].c_str(),
                      v[3].c_str()});
    if (!s.ok()) return s.status();
  }
  return {};
}

base::Result<std::vector<HourCounts>> PgRead(pg_conn* c,
                                             const std::string& sink_id,
                                             const base::IpAddress* ip,
                                             double since) {
  std::string from = std::to_string(HourOf(since));
  std::string key = ip ? pg::Hex(ip->bytes()) : sink_id;
  auto r = pg::Run(c,
                   ip ? "SELECT hour, sessions, messages, 0 FROM source_hours "
                        "WHERE ip = $1::bytea AND hour >= $2 ORDER BY hour"
                      : "SELECT hour, sessions, messages, new_sources FROM "
                        "sink_hours WHERE sink_id = $1 AND hour >= $2 ORDER "
                        "BY hour",
                   {key.c_str(), from.c_str()});
  if (!r.ok()) return r.status();
  std::vector<HourCounts> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    auto v = [&](int k) { return PQgetvalue(r->get(), i, k); };
    HourCounts h;
    h.hour = std::strtoll(v(0), nullptr, 10);
    h.sessions = std::strtoull(v(1), nullptr, 10);
    h.messages = std::strtoull(v(2), nullptr, 10);
    h.new_sources = std::strtoull(v(3), nullptr, 10);
    out.push_back(h);
  }
  return out;
}

base::Result<uint64_t> PgExpire(pg_conn* c, double cutoff) {
  std::string cut = std::to_string(int64_t(std::floor(cutoff)));
  std::string limit = std::to_string(kHourlyExpireLimit);
  // One statement each: autocommitted, no transaction to keep open.
  auto a = pg::Run(c,
                   "DELETE FROM source_hours WHERE (ip, hour) IN (SELECT ip, "
                   "hour FROM source_hours WHERE hour < $1 LIMIT $2)",
                   {cut.c_str(), limit.c_str()});
  if (!a.ok()) return a.status();
  auto b = pg::Run(c, "DELETE FROM sink_hours WHERE hour < $1", {cut.c_str()});
  if (!b.ok()) return b.status();
  return std::strtoull(PQcmdTuples(a->get()), nullptr, 10) +
         std::strtoull(PQcmdTuples(b->get()), nullptr, 10);
}

}  // namespace ledger::hourly
