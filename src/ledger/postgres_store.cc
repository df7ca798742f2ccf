#include "ledger/postgres_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <type_traits>

#include "base/log.h"
#include "ledger/hourly_sql.h"
#include "ledger/postgres_sql.h"

namespace ledger::pg {
namespace {

// Each race with another sink's insert makes progress for that sink, so a
// few attempts suffice; beyond them the ledger retries the batch later.
constexpr int kRaceAttempts = 4;
// Rows per FETCH of an export's cursor.
constexpr int kScanRows = 1000;

class PgStore final : public PostgresStore {
 public:
  explicit PgStore(PostgresOptions o) : o_(std::move(o)) {}

  // A server that does not answer is not an error here: the sink serves,
  // and the writer connects once it answers (Up). Anything else is.
  base::Status Init() {
    if (o_.sink_id.empty()) {
      return base::Status::Error("ledger.sink_id: must not be empty");
    }
    std::lock_guard lock(w_mu_);
    base::Status s = FirstConnect();
    if (s.ok() || !Unreachable(o_, s.message())) return s;
    Backoff(s);
    base::LogLine(base::LogLevel::kWarning, "ledger_unavailable")
        .Kv("reason", s.message())
        .Kv("action",
            "serving; records kept in memory and the spill file, written "
            "once the database answers");
    return {};
  }

  base::Status Ready() override {
    std::lock_guard lock(w_mu_);
    return Up();
  }

  void RetryNow() override {
    std::lock_guard lock(w_mu_);
    next_attempt_ = {};
  }

  void ResumeBatch(uint64_t seq) override {
    std::lock_guard lock(w_mu_);
    if (ready_) return;
    next_seq_ = seq;
    retrying_ = true;  // its COMMIT may have gone through: done if so
    resumed_ = true;
  }

  base::Status Apply(const std::vector<SourceRecord>& deltas) override {
    std::lock_guard lock(w_mu_);
    if (auto s = Up(); !s.ok()) return s;
    base::Status s;
    for (int attempt = 0; attempt < kRaceAttempts; ++attempt) {
      bool raced = false;
      s = ApplyOnce(deltas, &raced);
      if (!raced) break;
    }
    if (s.ok()) {
      next_seq_++;
      retrying_ = false;
    } else {
      retrying_ = true;  // the next call carries the same batch and sequence
    }
    return s;
  }

  base::Result<uint64_t> Expire(double cutoff) override {
    std::lock_guard lock(w_mu_);
    if (auto s = Up(); !s.ok()) return s;
    PGconn* c = w_.get();
    std::string cut = Num(cutoff);
    std::string batch = std::to_string(kExpireBatch);
    if (auto s = Exec(c, "BEGIN"); !s.ok()) return s;
    auto r = Run(c,
                 "WITH d AS (DELETE FROM sources WHERE ip IN (SELECT ip FROM "
                 "sources WHERE last_seen < $1 ORDER BY last_seen LIMIT $2) "
                 "RETURNING connections, messages, recipients, bytes, "
                 "seconds_held) SELECT count(*), coalesce(sum(connections), "
                 "0), coalesce(sum(messages), 0), coalesce(sum(recipients), "
                 "0), coalesce(sum(bytes), 0), coalesce(sum(seconds_held), 0) "
                 "FROM d",
                 {cut.c_str(), batch.c_str()});
    if (!r.ok()) return Rollback(c, r.status());
    std::vector<std::string> sub;
    for (int i = 0; i < 6; ++i) sub.push_back(PQgetvalue(r->get(), 0, i));
    uint64_t n = std::strtoull(sub[0].c_str(), nullptr, 10);
    auto t = Run(c,
                 "UPDATE totals SET sources = sources - $1, connections = "
                 "connections - $2, messages = messages - $3, recipients = "
                 "recipients - $4, bytes = bytes - $5, seconds_held = "
                 "seconds_held - $6 WHERE id = 1",
                 {sub[0].c_str(), sub[1].c_str(), sub[2].c_str(),
                  sub[3].c_str(), sub[4].c_str(), sub[5].c_str()});
    if (!t.ok()) return Rollback(c, t.status());
    auto a = Run(c,
                 "DELETE FROM source_sinks WHERE ctid IN (SELECT ctid FROM "
                 "source_sinks WHERE last_seen < $1 LIMIT $2)",
                 {cut.c_str(), batch.c_str()});
    if (!a.ok()) return Rollback(c, a.status());
    if (auto s = Exec(c, "COMMIT"); !s.ok()) return s;
    return n;
  }

  // Reads retry once when the reader's connection turns out to be lost (a
  // restarted server): libpq notices only when a query fails.
  base::Result<std::optional<SourceRecord>> Get(
      const base::IpAddress& ip) override {
    return Read([&] { return GetOnce(ip); });
  }
  base::Result<SourcePage> Query(const SourceQuery& q) override {
    return Read([&] { return QueryOnce(q); });
  }
  base::Result<Totals> GetTotals() override {
    return Read([&] { return TotalsOnce(); });
  }

  base::Result<std::optional<SourceRecord>> GetOnce(const base::IpAddress& ip) {
    std::lock_guard lock(r_mu_);
    if (auto s = Reconnect(r_.get()); !s.ok()) return s;
    std::string hex = Hex(ip.bytes());
    auto r = Run(r_.get(),
                 "SELECT " + std::string(kColumns) +
                     " FROM sources WHERE ip = $1::bytea",
                 {hex.c_str()});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<SourceRecord>();
    return std::optional<SourceRecord>(Decode(r->get(), 0));
  }

  base::Result<SourcePage> QueryOnce(const SourceQuery& q) {
    if (q.after) {
      return base::Status::Error(
          "after= (cursor paging) is not supported by the postgresql store: "
          "use offset");
    }
    std::string where;
    std::vector<std::string> args;
    std::string sql = SelectSql(q, &args, &where);
    std::vector<const char*> params;
    for (const auto& a : args) params.push_back(a.c_str());

    std::lock_guard lock(r_mu_);
    PGconn* c = r_.get();
    if (auto s = Reconnect(c); !s.ok()) return s;
    // The page and the count from one snapshot.
    if (auto s = Exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        !s.ok()) {
      return s;
    }
    auto rows = Run(c, sql, params);
    if (!rows.ok()) return Rollback(c, rows.status());
    SourcePage page;
    for (int i = 0; i < PQntuples(rows->get()); ++i) {
      page.records.push_back(Decode(rows->get(), i));
    }
    auto n = Run(c,
                 where.empty() ? "SELECT sources FROM totals WHERE id = 1"
                               : "SELECT count(*) FROM sources" + where,
                 params);
    if (!n.ok()) return Rollback(c, n.status());
    page.total = std::strtoull(PQgetvalue(n->get(), 0, 0), nullptr, 10);
    Exec(c, "COMMIT");
    return page;
  }

  base::Result<Totals> TotalsOnce() {
    std::lock_guard lock(r_mu_);
    if (auto s = Reconnect(r_.get()); !s.ok()) return s;
    auto r = Run(r_.get(),
                 "SELECT sources, connections, messages, recipients, bytes, "
                 "seconds_held FROM totals WHERE id = 1");
    if (!r.ok()) return r.status();
    Totals t;
    auto u = [&](int i) {
      return std::strtoull(PQgetvalue(r->get(), 0, i), nullptr, 10);
    };
    t.sources = u(0);
    t.connections = u(1);
    t.messages = u(2);
    t.recipients = u(3);
    t.bytes = u(4);
    t.seconds_held = std::strtod(PQgetvalue(r->get(), 0, 5), nullptr);
    return t;
  }

  // Exports stream through a server-side cursor on a connection of their
  // own, kScanRows rows at a time: constant memory however many rows match,
  // and API reads do not wait behind a long export.
  base::Status Scan(const SourceQuery& q, const Visitor& each) override {
    std::string where;
    std::vector<std::string> args;
    std::string sql = SelectSql(q, &args, &where);
    std::vector<const char*> params;
    for (const auto& a : args) params.push_back(a.c_str());
    auto conn = Connect(o_);
    if (!conn.ok()) return conn.status();
    PGconn* c = conn->get();
    if (auto s = Exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        !s.ok()) {
      return s;
    }
    if (auto s =
            Run(c, "DECLARE spamsink_scan NO SCROLL CURSOR FOR " + sql, params);
        !s.ok()) {
      return s.status();
    }
    const std::string fetch =
        "FETCH FORWARD " + std::to_string(kScanRows) + " FROM spamsink_scan";
    for (;;) {  // ends at the cursor's end: each FETCH moves it on
      auto rows = Run(c, fetch);
      if (!rows.ok()) return rows.status();
      int n = PQntuples(rows->get());
      for (int i = 0; i < n; ++i) {
        if (auto s = each(Decode(rows->get(), i)); !s.ok()) return s;
      }
      if (n < kScanRows) break;
    }
    return Exec(c, "COMMIT");
  }

  base::Result<std::vector<SinkCounts>> Sinks(
      const base::IpAddress& ip) override {
    std::string hex = Hex(ip.bytes());
    return Read([&] {
      return ReadSinks(
          "SELECT sink_id, first_seen, last_seen, connections, messages, bytes "
          "FROM source_sinks WHERE ip = $1::bytea ORDER BY sink_id",
          {hex.c_str()});
    });
  }

  base::Result<std::vector<SinkCounts>> SinkTotals() override {
    return Read([&] {
      return ReadSinks(
          "SELECT sink_id, min(first_seen), max(last_seen), sum(connections), "
          "sum(messages), sum(bytes) FROM source_sinks GROUP BY sink_id "
          "ORDER BY sink_id",
          {});
    });
  }

  base::Result<std::string> Changes(const std::string& cursor,
                                    const Visitor& each) override {
    if (!ready_) return NotYet();
    std::lock_guard lock(f_mu_);
    if (!f_ || PQstatus(f_.get()) != CONNECTION_OK) {
      auto c = Connect(o_);
      if (!c.ok()) return c.status();
      f_ = std::move(c).value();
    }
    PGconn* c = f_.get();
    // One snapshot for the read and the cursor it returns.
    if (auto s = Exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        !s.ok()) {
      return s;
    }
    auto snap = Run(c, "SELECT pg_current_snapshot()::text");
    if (!snap.ok()) return Rollback(c, snap.status());
    std::string next = PQgetvalue(snap->get(), 0, 0);
    if (!cursor.empty()) {
      // Rows written by transactions not yet committed when cursor was
      // taken (or begun after it) and committed by now: xids below the
      // cursor's xmin were all settled then, so the index range starts there.
      auto rows = Run(c,
                      "SELECT " + std::string(kColumns) +
                          " FROM sources WHERE change_xid >= "
                          "pg_snapshot_xmin($1::pg_snapshot) AND NOT "
                          "pg_visible_in_snapshot(change_xid, $1::pg_snapshot)",
                      {cursor.c_str()});
      if (!rows.ok()) return Rollback(c, rows.status());
      for (int i = 0; i < PQntuples(rows->get()); ++i) {
        if (auto s = each(Decode(rows->get(), i)); !s.ok()) {
          return Rollback(c, s);
        }
      }
    }
    if (auto s = Exec(c, "COMMIT"); !s.ok()) return s;
    return next;
  }

  base::Result<std::vector<HourCounts>> SourceHours(const base::IpAddress& ip,
                                                    double since) override {
    return Read([&] { return HoursOnce(&ip, since); });
  }
  base::Result<std::vector<HourCounts>> Hours(double since) override {
    return Read([&] { return HoursOnce(nullptr, since); });
  }
  base::Result<uint64_t> ExpireHours(double cutoff) override {
    std::lock_guard lock(w_mu_);
    if (auto s = Reconnect(w_.get()); !s.ok()) return s;
    return hourly::PgExpire(w_.get(), cutoff);
  }
  base::Result<std::vector<HourCounts>> HoursOnce(const base::IpAddress* ip,
                                                  double since) {
    std::lock_guard lock(r_mu_);
    if (auto s = Reconnect(r_.get()); !s.ok()) return s;
    return hourly::PgRead(r_.get(), o_.sink_id, ip, since);
  }

  StoreUsage Usage() override {
    StoreUsage u;
    u.created = created_.load();
    return u;
  }

  uint64_t next_sequence() const override {
    std::lock_guard lock(w_mu_);
    return ready_ || resumed_ ? next_seq_ : 0;
  }

 private:
  static constexpr double kFirstBackoff = 0.25;  // seconds
  static constexpr double kMaxBackoff = 8;

  static base::Status NotYet() {
    return base::Status::Error(std::string(kSetting) +
                               ": the database has not answered yet");
  }

  // Connects the writer and the reader, migrates, reads this sink's last
  // sequence. REQUIRES: w_mu_ held.
  base::Status FirstConnect() {
    auto w = Connect(o_);
    if (!w.ok()) return w.status();
    if (auto s = Migrate(w->get(), kPostgresSchemaVersion); !s.ok()) return s;
    auto r = Connect(o_);
    if (!r.ok()) return r.status();
    const char* p[] = {o_.sink_id.c_str()};
    auto seq = Run(w->get(), "SELECT seq FROM sink_batches WHERE sink_id = $1",
                   {p[0]});
    if (!seq.ok()) return seq.status();
    // A resumed batch (ResumeBatch) keeps its own sequence: the database
    // holds it (committed) or the one before it.
    if (PQntuples(seq->get()) == 1 && !resumed_) {
      next_seq_ = std::strtoull(PQgetvalue(seq->get(), 0, 0), nullptr, 10) + 1;
    }
    w_ = std::move(w).value();
    {
      std::lock_guard lock(r_mu_);
      r_ = std::move(r).value();
    }
    ready_ = true;
    return {};
  }

  // The writer's connection, made or remade no sooner than the backoff
  // after a failed attempt allows (0.25 s doubling to 8 s): a flush every
  // second against a server that is down costs one refused connect per
  // backoff, not one per flush. REQUIRES: w_mu_ held.
  base::Status Up() {
    if (ready_ && PQstatus(w_.get()) == CONNECTION_OK) return {};
    auto now = std::chrono::steady_clock::now();
    if (now < next_attempt_) {
      return base::Status::Error(last_error_ + " (next attempt within " +
                                 Num(backoff_) + " s)");
    }
    base::Status s = ready_ ? Reconnect(w_.get()) : FirstConnect();
    if (s.ok()) {
      backoff_ = 0;
      return s;
    }
    Backoff(s);
    return s;
  }

  void Backoff(const base::Status& s) {
    backoff_ =
        backoff_ == 0 ? kFirstBackoff : std::min(2 * backoff_, kMaxBackoff);
    next_attempt_ =
        std::chrono::steady_clock::now() +
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(backoff_));
    last_error_ = s.message();
  }

  template <typename F>
  std::invoke_result_t<F> Read(F f) {
    if (!ready_) return NotYet();
    auto r = f();
    if (r.ok()) return r;
    {
      std::lock_guard lock(r_mu_);
      if (PQstatus(r_.get()) == CONNECTION_OK) return r;
    }
    return f();  // reconnects first
  }

  base::Status Reconnect(PGconn* c) {
    if (PQstatus(c) == CONNECTION_OK) return {};
    PQreset(c);
    if (PQstatus(c) != CONNECTION_OK) return ConnError(c, "reconnect failed");
    return {};
  }

  static base::Status Rollback(PGconn* c, base::Status s) {
    Exec(c, "ROLLBACK");
    return s;
  }

  base::Result<std::vector<SinkCounts>> ReadSinks(
      const std::string& sql, const std::vector<const char*>& params) {
    std::lock_guard lock(r_mu_);
    if (auto s = Reconnect(r_.get()); !s.ok()) return s;
    auto r = Run(r_.get(), sql, params);
    if (!r.ok()) return r.status();
    std::vector<SinkCounts> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      auto v = [&](int k) { return PQgetvalue(r->get(), i, k); };
      SinkCounts s;
      s.sink_id = v(0);
      s.first_seen = std::strtod(v(1), nullptr);
      s.last_seen = std::strtod(v(2), nullptr);
      s.connections = std::strtoull(v(3), nullptr, 10);
      s.messages = std::strtoull(v(4), nullptr, 10);
      s.bytes = std::strtoull(v(5), nullptr, 10);
      out.push_back(std::move(s));
    }
    return out;
  }

  // One transaction: sequence mark, row locks, merge, write, attribution,
  // totals. REQUIRES: w_mu_ held, w_ connected.
  // *raced: the batch met another sink's insert of one of its new
  // addresses and was rolled back; running it again will succeed.
  base::Status ApplyOnce(const std::vector<SourceRecord>& deltas, bool* raced) {
    PGconn* c = w_.get();
    std::vector<const SourceRecord*> sorted;
    for (const auto& d : deltas) sorted.push_back(&d);
    std::sort(sorted.begin(), sorted.end(),
              [](auto* a, auto* b) { return a->ip < b->ip; });
    std::string ips = "{";
    for (auto* d : sorted) AddElement(&ips, Hex(d->ip.bytes()));
    ips += '}';

    if (auto s = Exec(c, "BEGIN"); !s.ok()) return s;
    std::string seq = std::to_string(next_seq_);
    auto mark = Run(c,
                    "INSERT INTO sink_batches (sink_id, seq) VALUES ($1, $2) "
                    "ON CONFLICT (sink_id) DO UPDATE SET seq = EXCLUDED.seq, "
                    "committed_at = now() WHERE sink_batches.seq < "
                    "EXCLUDED.seq",
                    {o_.sink_id.c_str(), seq.c_str()});
    if (!mark.ok()) return Rollback(c, mark.status());
    if (std::strcmp(PQcmdTuples(mark->get()), "1") != 0) {
      Exec(c, "ROLLBACK");
      if (retrying_) return {};  // the lost COMMIT did commit: done once
      return base::Status::Error(
          "ledger.sink_id: batch " + seq + " of sink '" + o_.sink_id +
          "' is already in the database: another process uses this sink_id");
    }
    // Every existing row of the batch locked in address order, merged
    // here, staged by COPY; new rows inserted once, existing ones updated.
    auto cur = Run(c,
                   "SELECT " + std::string(kColumns) +
                       " FROM sources WHERE ip = ANY($1::bytea[]) ORDER BY ip "
                       "FOR UPDATE",
                   {ips.c_str()});
    if (!cur.ok()) return Rollback(c, cur.status());
    if (o_.after_rows_locked) o_.after_rows_locked();
    std::map<base::IpAddress, SourceRecord> stored;
    for (int i = 0; i < PQntuples(cur->get()); ++i) {
      SourceRecord r = Decode(cur->get(), i);
      stored.emplace(r.ip, std::move(r));
    }
    Totals add;
    HourlyBatch hours;
    std::string rows;
    for (auto* d : sorted) {
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
    auto attr = Run(c, kStageSinksSql, {o_.sink_id.c_str()});
    if (!attr.ok()) return Rollback(c, attr.status());
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
    if (auto s = hourly::PgAdd(c, o_.sink_id, hours); !s.ok()) {
      return Rollback(c, s);
    }
    base::Status committed = Commit(c);
    if (committed.ok()) created_ += add.sources;
    return committed;
  }

  // COMMIT whose reply may be lost (the test hook can cut it there).
  base::Status Commit(PGconn* c) {
    if (!PQsendQuery(c, "COMMIT")) return ConnError(c, "COMMIT not sent");
    if (o_.after_commit_sent) o_.after_commit_sent(PQsocket(c));
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

  PostgresOptions o_;
  mutable std::mutex w_mu_;  // guards w_, next_seq_, retrying_
  std::mutex r_mu_;          // guards r_
  std::mutex f_mu_;          // guards f_ (Changes)
  Conn w_, r_, f_;
  uint64_t next_seq_ = 1;
  std::atomic<bool> ready_{false};  // FirstConnect succeeded (set once)
  bool resumed_ = false;            // ResumeBatch set next_seq_
  double backoff_ = 0;              // seconds; 0: the last attempt worked
  std::chrono::steady_clock::time_point next_attempt_{};
  std::string last_error_;
  std::atomic<uint64_t> created_{0};  // rows ApplyOnce inserted
  bool retrying_ = false;
};

}  // namespace
}  // namespace ledger::pg

namespace ledger {

base::Result<std::unique_ptr<PostgresStore>> OpenPostgresStore(
    const PostgresOptions& options) {
  auto store = std::make_unique<pg::PgStore>(options);
  if (auto s = store->Init(); !s.ok()) return s;
  return std::unique_ptr<PostgresStore>(std::move(store));
}

base::Status CreatePostgresSchemaForTest(const std::string& url, int version) {
  PostgresOptions o;
  o.url = url;
  auto c = pg::Connect(o);
  if (!c.ok()) return c.status();
  return pg::Migrate(c->get(), version);
}

}  // namespace ledger
