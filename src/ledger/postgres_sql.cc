#include "ledger/postgres_sql.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "ledger/hourly_sql.h"
#include "ledger/json_fields.h"

namespace ledger::pg {
namespace {

// Migration i takes the schema from version i to i + 1. Version 1 is the
// SQLite schema 3 in PostgreSQL types; version 2 adds the fleet tables.
// Every table is keyed by ip first, so each can be distributed by ip (Citus
// create_distributed_table('sources', 'ip')); see docs/FLEET.md.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE sources (
  ip bytea PRIMARY KEY,
  first_seen float8 NOT NULL DEFAULT 0,
  last_seen float8 NOT NULL DEFAULT 0,
  connections bigint NOT NULL DEFAULT 0,
  sessions_with_mail bigint NOT NULL DEFAULT 0,
  transactions bigint NOT NULL DEFAULT 0,
  messages bigint NOT NULL DEFAULT 0,
  recipients bigint NOT NULL DEFAULT 0,
  bytes bigint NOT NULL DEFAULT 0,
  seconds_held float8 NOT NULL DEFAULT 0,
  commands bigint NOT NULL DEFAULT 0,
  tls_sessions bigint NOT NULL DEFAULT 0,
  proxied_sessions bigint NOT NULL DEFAULT 0,
  auth_attempts bigint NOT NULL DEFAULT 0,
  early_talker bigint NOT NULL DEFAULT 0,
  pipelining bigint NOT NULL DEFAULT 0,
  bare_lf bigint NOT NULL DEFAULT 0,
  bare_cr bigint NOT NULL DEFAULT 0,
  unknown_commands bigint NOT NULL DEFAULT 0,
  protocol_errors bigint NOT NULL DEFAULT 0,
  limits_hit bigint NOT NULL DEFAULT 0,
  evidence bigint NOT NULL DEFAULT 0,
  close_reasons text NOT NULL DEFAULT '{}',
  helo_names text NOT NULL DEFAULT '[]',
  mail_from_domains text NOT NULL DEFAULT '[]',
  rcpt_domains text NOT NULL DEFAULT '[]',
  tarpitted_sessions bigint NOT NULL DEFAULT 0,
  delay_seconds float8 NOT NULL DEFAULT 0,
  replies_stuttered bigint NOT NULL DEFAULT 0,
  slow_reads bigint NOT NULL DEFAULT 0
);
CREATE INDEX sources_by_messages ON sources (messages DESC, ip);
CREATE INDEX sources_by_bytes ON sources (bytes DESC, ip);
CREATE INDEX sources_by_last_seen ON sources (last_seen DESC, ip);
CREATE INDEX sources_by_seconds_held ON sources (seconds_held DESC, ip);
CREATE INDEX sources_by_connections ON sources (connections DESC, ip);
CREATE INDEX sources_by_delay_seconds ON sources (delay_seconds DESC, ip);
CREATE INDEX sources_with_evidence ON sources (evidence) WHERE evidence != 0;
CREATE TABLE totals (
  id int PRIMARY KEY CHECK (id = 1),
  sources bigint NOT NULL,
  connections bigint NOT NULL,
  messages bigint NOT NULL,
  recipients bigint NOT NULL,
  bytes bigint NOT NULL,
  seconds_held float8 NOT NULL
);
INSERT INTO totals VALUES (1, 0, 0, 0, 0, 0, 0);
)sql",
    // 2: the fleet: batch identity per sink, attribution per address+sink.
    R"sql(
CREATE TABLE sink_batches (
  sink_id text PRIMARY KEY,
  seq bigint NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE source_sinks (
  ip bytea NOT NULL,
  sink_id text NOT NULL,
  first_seen float8 NOT NULL,
  last_seen float8 NOT NULL,
  connections bigint NOT NULL,
  messages bigint NOT NULL,
  bytes bigint NOT NULL,
  PRIMARY KEY (ip, sink_id)
);
CREATE INDEX source_sinks_by_sink ON source_sinks (sink_id);
)sql",
    // 3: the change cursor of the fleet's reputation followers: the
    // transaction that last wrote each row (PostgresStore::Changes). Old
    // rows get 0, older than any snapshot: they are history, not changes.
    R"sql(
ALTER TABLE sources ADD COLUMN change_xid xid8 NOT NULL DEFAULT '0';
CREATE INDEX sources_by_change ON sources (change_xid);
)sql",
    // 4: hourly counts per source and per sink (ledger/hourly.h).
    hourly::kPostgresMigration,
    // 5: one exactly-once mark per writer connection of a sink
    // (ledger.writer_connections); the single mark so far is part 0's.
    R"sql(
ALTER TABLE sink_batches ADD COLUMN part int NOT NULL DEFAULT 0;
ALTER TABLE sink_batches DROP CONSTRAINT sink_batches_pkey;
ALTER TABLE sink_batches ADD PRIMARY KEY (sink_id, part);
)sql",
    // 6: the full addresses sampled inside an IPv6 network's record.
    R"sql(
ALTER TABLE sources ADD COLUMN addresses text NOT NULL DEFAULT '';
)sql",
};
static_assert(std::size(kMigrations) == kPostgresSchemaVersion);

}  // namespace

const char* const kColumns =
    "ip, first_seen, last_seen, connections, sessions_with_mail, "
    "transactions, messages, recipients, bytes, seconds_held, commands, "
    "tls_sessions, proxied_sessions, auth_attempts, early_talker, pipelining, "
    "bare_lf, bare_cr, unknown_commands, protocol_errors, limits_hit, "
    "evidence, close_reasons, helo_names, mail_from_domains, rcpt_domains, "
    "tarpitted_sessions, delay_seconds, replies_stuttered, slow_reads, "
    "addresses";

std::string Trim(const char* s) {
  // libpq's messages span lines; a log line wants one.
  std::string m;
  for (const char* p = s ? s : ""; *p; ++p) {
    bool space = *p == '\n' || *p == '\t' || *p == ' ';
    if (space && (m.empty() || m.back() == ' ')) continue;
    m += space ? ' ' : *p;
  }
  while (!m.empty() && m.back() == ' ') m.pop_back();
  return m;
}

base::Status ConnError(PGconn* c, const std::string& what) {
  return base::Status::Error(std::string(kSetting) + ": " + what + ": " +
                             Trim(PQerrorMessage(c)));
}

std::string Hex(const std::array<uint8_t, 16>& b) {
  static const char* d = "0123456789abcdef";
  std::string s = "\\x";
  for (uint8_t c : b) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

base::IpAddress ParseIp(const char* text) {
  std::array<uint8_t, 16> b{};
  auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  if (text && std::strlen(text) == 34 && text[0] == '\\' && text[1] == 'x') {
    for (int i = 0; i < 16; ++i) {
      b[i] = uint8_t(nib(text[2 + 2 * i]) << 4 | nib(text[3 + 2 * i]));
    }
  }
  return base::IpAddress::FromV6(b);
}

std::string Num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Appends v as one quoted element of a PostgreSQL array literal.
void AddElement(std::string* array, const std::string& v) {
  *array += array->size() > 1 ? ",\"" : "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') *array += '\\';
    *array += c;
  }
  *array += '"';
}

// Calls f with the text of each of r's columns, in kColumns order.
template <typename F>
void ForEachField(const SourceRecord& r, F f) {
  auto u = [&](uint64_t v) { f(std::to_string(v)); };
  auto d = [&](double v) { f(Num(v)); };
  auto t = [&](const std::string& v) { f(v); };
  t(Hex(r.ip.bytes()));
  d(r.first_seen);
  d(r.last_seen);
  u(r.connections);
  u(r.sessions_with_mail);
  u(r.transactions);
  u(r.messages);
  u(r.recipients);
  u(r.bytes);
  d(r.seconds_held);
  u(r.commands);
  u(r.tls_sessions);
  u(r.proxied_sessions);
  u(r.auth_attempts);
  u(r.early_talker);
  u(r.pipelining);
  u(r.bare_lf);
  u(r.bare_cr);
  u(r.unknown_commands);
  u(r.protocol_errors);
  u(r.limits_hit);
  u(r.EvidenceMask());
  t(ReasonsJson(r));
  t(NamesJson(r.helo_names));
  t(NamesJson(r.mail_from_domains));
  t(NamesJson(r.rcpt_domains));
  u(r.tarpitted_sessions);
  d(r.delay_seconds);
  u(r.replies_stuttered);
  u(r.slow_reads);
  t(AddressesJson(r));
}

SourceRecord Decode(PGresult* res, int row) {
  SourceRecord r;
  int c = 0;
  auto v = [&] { return PQgetvalue(res, row, c++); };
  auto u = [&] { return uint64_t(std::strtoull(v(), nullptr, 10)); };
  auto d = [&] { return std::strtod(v(), nullptr); };
  auto text = [&] { return reinterpret_cast<const unsigned char*>(v()); };
  r.ip = ParseIp(v());
  r.first_seen = d();
  r.last_seen = d();
  r.connections = u();
  r.sessions_with_mail = u();
  r.transactions = u();
  r.messages = u();
  r.recipients = u();
  r.bytes = u();
  r.seconds_held = d();
  r.commands = u();
  r.tls_sessions = u();
  r.proxied_sessions = u();
  r.auth_attempts = u();
  r.early_talker = u();
  r.pipelining = u();
  r.bare_lf = u();
  r.bare_cr = u();
  r.unknown_commands = u();
  r.protocol_errors = u();
  r.limits_hit = u();
  c++;  // evidence mask: derived
  ParseReasons(text(), &r);
  r.helo_names = ParseNames(text());
  r.mail_from_domains = ParseNames(text());
  r.rcpt_domains = ParseNames(text());
  r.tarpitted_sessions = u();
  r.delay_seconds = d();
  r.replies_stuttered = u();
  r.slow_reads = u();
  ParseAddresses(text(), &r);
  return r;
}

namespace {

// libpq's connection keywords and values for o (pointing into o and
// *timeout), null-terminated.
void Params(const PostgresOptions& o, const std::string& timeout,
            std::vector<const char*>* keys, std::vector<const char*>* vals) {
  *keys = {"dbname", "application_name", "connect_timeout", "options"};
  *vals = {o.url.c_str(), "spamsink", timeout.c_str(),
           "-c client_min_messages=warning"};
  if (!o.password.empty()) {
    keys->push_back("password");
    vals->push_back(o.password.c_str());
  }
  keys->push_back(nullptr);
  vals->push_back(nullptr);
}

}  // namespace

bool Unreachable(const PostgresOptions& o, const std::string& error) {
  // A TLS failure (a wrong CA, a server without TLS) is a setting to fix,
  // though the server sent no error of its own: ping cannot tell it apart.
  if (error.find("SSL") != std::string::npos ||
      error.find("certificate") != std::string::npos) {
    return false;
  }
  std::string timeout = std::to_string(o.connect_timeout_seconds);
  std::vector<const char*> keys, vals;
  Params(o, timeout, &keys, &vals);
  // NO_RESPONSE: nothing answered; REJECT: starting or shutting down. OK
  // means the server answered and refused us (password, database);
  // NO_ATTEMPT, a connection string libpq cannot parse.
  switch (PQpingParams(keys.data(), vals.data(), /*expand_dbname=*/1)) {
    case PQPING_NO_RESPONSE:
    case PQPING_REJECT:
      return true;
    default:
      return false;
  }
}

base::Result<Conn> Connect(const PostgresOptions& o) {
  std::string timeout = std::to_string(o.connect_timeout_seconds);
  std::vector<const char*> keys, vals;
  Params(o, timeout, &keys, &vals);
  Conn c(PQconnectdbParams(keys.data(), vals.data(), /*expand_dbname=*/1));
  if (!c) return base::Status::Error(std::string(kSetting) + ": out of memory");
  if (PQstatus(c.get()) != CONNECTION_OK) {
    return ConnError(c.get(), "cannot connect");
  }
  return c;
}

base::Result<Res> Run(PGconn* c, const std::string& sql,
                      const std::vector<const char*>& params) {
  Res r(PQexecParams(c, sql.c_str(), int(params.size()), nullptr, params.data(),
                     nullptr, nullptr, 0));
  auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return base::Status::Error(
        "postgresql: " +
        Trim(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c)));
  }
  return r;
}

base::Status Exec(PGconn* c, const std::string& sql) {
  // The simple protocol: sql may hold several statements.
  Res r(PQexec(c, sql.c_str()));
  auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return base::Status::Error(
        "postgresql: " +
        Trim(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c)));
  }
  return {};
}

base::Status Migrate(PGconn* c, int target) {
  if (auto s = Exec(c, "BEGIN"); !s.ok()) return s;
  auto fail = [&](base::Status s) {
    Exec(c, "ROLLBACK");
    return s;
  };
  // Several sinks may start together: one migrates, the others wait.
  if (auto s = Exec(c,
                    "SELECT pg_advisory_xact_lock(7311); CREATE TABLE IF NOT "
                    "EXISTS spamsink_schema (version int NOT NULL)");
      !s.ok()) {
    return fail(s);
  }
  auto v = Run(c, "SELECT max(version) FROM spamsink_schema");
  if (!v.ok()) return fail(v.status());
  int version = std::atoi(PQgetvalue(v->get(), 0, 0));
  if (version > target) {
    return fail(base::Status::Error(
        std::string(kSetting) + ": database schema version " +
        std::to_string(version) + " is newer than this build's " +
        std::to_string(target) + "; upgrade spamsink"));
  }
  for (int i = version; i < target; ++i) {
    if (auto s = Exec(c, kMigrations[i]); !s.ok()) return fail(s);
  }
  if (auto s = Exec(c,
                    "DELETE FROM spamsink_schema; INSERT INTO "
                    "spamsink_schema VALUES (" +
                        std::to_string(target) + ")");
      !s.ok()) {
    return fail(s);
  }
  return Exec(c, "COMMIT");
}

}  // namespace ledger::pg

namespace ledger::pg {
namespace {

std::vector<std::string> ColumnNames() {
  std::string names = kColumns;
  std::vector<std::string> cols;
  for (size_t p = 0; p <= names.size();) {
    size_t e = names.find(", ", p);
    if (e == std::string::npos) e = names.size();
    cols.push_back(names.substr(p, e - p));
    p = e + 2;
  }
  return cols;
}

// One field of a text-format COPY row.
void CopyField(std::string* out, const std::string& v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        *out += "\\\\";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      default:
        *out += c;
    }
  }
}

constexpr const char kDeltaColumns[] =
    "is_new, d_first, d_last, d_connections, d_messages, d_bytes";

}  // namespace

// The joins with the staging table go by the primary key of sources: the
// planner, seeing a fresh temporary table next to a small sources table,
// would hash all of sources instead (a full scan per batch, which at
// millions of addresses is the whole batch's time).
const char* const kStageTableSql =
    "CREATE TEMP TABLE IF NOT EXISTS spamsink_stage (LIKE sources INCLUDING "
    "DEFAULTS, is_new "
    "bool NOT NULL, d_first float8, d_last float8, d_connections bigint, "
    "d_messages bigint, d_bytes bigint) ON COMMIT DELETE ROWS; SET LOCAL "
    "enable_hashjoin = off; SET LOCAL enable_mergejoin = off";

const std::string& StageCopySql() {
  static const std::string sql = std::string("COPY spamsink_stage (") +
                                 kColumns + ", " + kDeltaColumns +
                                 ") FROM STDIN";
  return sql;
}

void AppendStageRow(std::string* out, const SourceRecord& merged, bool is_new,
                    const SourceRecord& delta) {
  ForEachField(merged, [&](const std::string& v) {
    CopyField(out, v);
    *out += '\t';
  });
  *out += is_new ? "t\t" : "f\t";
  *out += Num(delta.first_seen) + '\t' + Num(delta.last_seen) + '\t' +
          std::to_string(delta.connections) + '\t' +
          std::to_string(delta.messages) + '\t' + std::to_string(delta.bytes) +
          '\n';
}

const std::string& StageInsertSql() {
  static const std::string sql =
      std::string("INSERT INTO sources (") + kColumns +
      ", change_xid) SELECT " + kColumns +
      ", pg_current_xact_id() FROM spamsink_stage WHERE is_new ORDER BY ip ON "
      "CONFLICT (ip) DO NOTHING";
  return sql;
}

const std::string& StageUpdateSql() {
  static const std::string sql = [] {
    auto cols = ColumnNames();
    std::string set;
    for (size_t i = 1; i < cols.size(); ++i) {
      set += std::string(i > 1 ? ", " : "") + cols[i] + " = v." + cols[i];
    }
    return "UPDATE sources SET " + set +
           ", change_xid = pg_current_xact_id() FROM spamsink_stage v WHERE "
           "NOT v.is_new AND sources.ip = v.ip";
  }();
  return sql;
}

const char* const kStageSinksSql =
    "INSERT INTO source_sinks AS s (ip, sink_id, first_seen, last_seen, "
    "connections, messages, bytes) SELECT ip, $1, d_first, d_last, "
    "d_connections, d_messages, d_bytes FROM spamsink_stage ORDER BY ip "
    "ON CONFLICT (ip, sink_id) DO UPDATE SET first_seen = "
    "LEAST(s.first_seen, EXCLUDED.first_seen), last_seen = "
    "GREATEST(s.last_seen, EXCLUDED.last_seen), connections = "
    "s.connections + EXCLUDED.connections, messages = s.messages + "
    "EXCLUDED.messages, bytes = s.bytes + EXCLUDED.bytes";

base::Status PutCopy(PGconn* c, const std::string& buf) {
  constexpr size_t kChunk = 1 << 20;
  for (size_t p = 0; p < buf.size(); p += kChunk) {
    int n = int(std::min(kChunk, buf.size() - p));
    if (PQputCopyData(c, buf.data() + p, n) != 1) {
      return ConnError(c, "COPY data not sent");
    }
  }
  if (PQputCopyEnd(c, nullptr) != 1) return ConnError(c, "COPY not ended");
  base::Status s;
  while (PGresult* r = PQgetResult(c)) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && s.ok()) {
      s = base::Status::Error("postgresql: " + Trim(PQresultErrorMessage(r)));
    }
    PQclear(r);
  }
  return s;
}

std::string SelectSql(const SourceQuery& q, std::vector<std::string>* args,
                      std::string* where) {
  auto add = [&](const std::string& cond, std::string arg) {
    args->push_back(std::move(arg));
    *where += where->empty() ? " WHERE " : " AND ";
    std::string n = "$" + std::to_string(args->size());
    std::string c = cond;
    for (size_t p; (p = c.find('?')) != std::string::npos;) c.replace(p, 1, n);
    *where += c;
  };
  if (q.since) add("last_seen >= ?::float8", Num(*q.since));
  if (q.until) add("last_seen < ?::float8", Num(*q.until));
  if (q.cidr) {
    std::array<uint8_t, 16> lo = q.cidr->network().bytes(), hi = lo;
    int bits = CidrBits128(*q.cidr);
    for (int i = 0; i < 16; ++i) {
      int keep = bits - i * 8;
      if (keep >= 8) continue;
      hi[i] |= keep <= 0 ? 0xff : uint8_t(0xff >> keep);
    }
    add("ip >= ?::bytea", Hex(lo));
    add("ip <= ?::bytea", Hex(hi));
  }
  if (q.min_messages) {
    add("messages >= ?::bigint", std::to_string(q.min_messages));
  }
  if (q.evidence) {
    add("evidence != 0 AND (evidence & ?::bigint) = ?::bigint",
        std::to_string(q.evidence));
  }
  if (q.sink) {
    add("EXISTS (SELECT 1 FROM source_sinks s WHERE s.ip = sources.ip "
        "AND s.sink_id = ?)",
        *q.sink);
  }
  const char* dir = q.ascending ? " ASC" : " DESC";
  std::string sql = "SELECT " + std::string(kColumns) + " FROM sources" +
                    *where + " ORDER BY " + SortKeyName(q.sort) + dir;
  if (q.sort != SortKey::kIp) sql += ", ip ASC";
  if (q.limit != 0) sql += " LIMIT " + std::to_string(q.limit);
  if (q.offset != 0) sql += " OFFSET " + std::to_string(q.offset);
  return sql;
}

}  // namespace ledger::pg
