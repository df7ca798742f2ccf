#include "ledger/postgres_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <type_traits>

#include "base/log.h"
#include "ledger/hourly_sql.h"
#include "ledger/postgres_sql.h"

namespace ledger::pg {
namespace {

// A race means another sink committed one of this part's new addresses
// first: the next attempt finds it stored, so every race shrinks the set
// that can race again. Three sinks inserting the same hundreds of fresh
// addresses at once took more than four attempts in CI; a short random
// pause between attempts lets the sinks fall out of step. Beyond the cap
// the ledger keeps the batch and retries it at the next flush.
constexpr int kRaceAttempts = 32;
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

  bool ResumeBatch(uint64_t seq) override {
    std::lock_guard lock(w_mu_);
    if (ready_ && seq <= min_mark_) return true;  // every part holds it
    next_seq_ = seq;
    retrying_ = true;  // some parts may hold it: they skip it
    resumed_ = !ready_;
    return false;
  }

  // Each part on its own connection and thread (part 0 on the caller's);
  // done when every part has committed.
  base::Status Apply(const std::vector<SourceRecord>& deltas) override {
    std::lock_guard lock(w_mu_);
    if (auto s = Up(); !s.ok()) return s;
    const int n = int(ws_.size());
    std::vector<PartBatch> parts(n);
    for (int p = 0; p < n; ++p) {
      parts[p].part = p;
      parts[p].seq = next_seq_;
      parts[p].retrying = retrying_;
      parts[p].seed_parts = fresh_ ? n : 0;
    }
    for (const auto& d : deltas) {
      parts[WriterPartition(d.ip, n)].sorted.push_back(&d);
    }
    std::vector<base::Status> st(n);
    auto run = [&](int p) {
      auto& b = parts[p].sorted;
      std::sort(b.begin(), b.end(),
                [](auto* x, auto* y) { return x->ip < y->ip; });
      for (int attempt = 0; attempt < kRaceAttempts; ++attempt) {
        bool raced = false;
        uint64_t created = 0;
        st[p] = ApplyPart(ws_[p].get(), o_, parts[p], &raced, &created);
        created_ += created;
        if (!raced) break;
        thread_local std::minstd_rand jitter(std::random_device{}());
        std::this_thread::sleep_for(std::chrono::microseconds(
            jitter() % (500 * std::min(attempt + 1, 8))));
      }
    };
    std::vector<std::thread> threads;
    for (int p = 1; p < n; ++p) threads.emplace_back(run, p);
    run(0);
    for (auto& t : threads) t.join();
    for (int p = 0; p < n; ++p) {
      if (st[p].ok()) continue;
      // The next call carries the same batch and sequence: the parts that
      // committed find their mark and skip.
      retrying_ = true;
      return n == 1 ? st[p]
                    : base::Status::Error("writer connection " +
                                          std::to_string(p) + ": " +
                                          st[p].message());
    }
    min_mark_ = next_seq_;  // every part holds it now
    next_seq_++;
    retrying_ = false;
    fresh_ = false;
    return {};
  }

  base::Result<uint64_t> Expire(double cutoff) override {
    std::lock_guard lock(w_mu_);
    if (auto s = Up(); !s.ok()) return s;
    PGconn* c = ws_[0].get();
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
    if (auto s = Up(); !s.ok()) return s;
    return hourly::PgExpire(ws_[0].get(), cutoff);
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

  // Connects the writers and the reader, migrates, reads this sink's marks
  // (SinkMarks). REQUIRES: w_mu_ held.
  base::Status FirstConnect() {
    const int n = std::max(1, o_.writer_connections);
    std::vector<Conn> ws;
    for (int p = 0; p < n; ++p) {
      auto w = Connect(o_);
      if (!w.ok()) return w.status();
      if (p == 0) {
        if (auto s = Migrate(w->get(), kPostgresSchemaVersion); !s.ok()) {
          return s;
        }
      }
      ws.push_back(std::move(w).value());
    }
    auto r = Connect(o_);
    if (!r.ok()) return r.status();
    uint64_t lo = 0, hi = 0;
    if (auto s = SinkMarks(ws[0].get(), o_.sink_id, n, &lo, &hi); !s.ok()) {
      return s;
    }
    min_mark_ = lo;
    fresh_ = hi == 0;
    // A resumed batch (ResumeBatch) keeps its own sequence: each part's
    // mark holds it (committed) or the one before it.
    if (!resumed_) next_seq_ = hi + 1;
    ws_ = std::move(ws);
    {
      std::lock_guard lock(r_mu_);
      r_ = std::move(r).value();
    }
    ready_ = true;
    return {};
  }

  // The writers' connections, made or remade no sooner than the backoff
  // after a failed attempt allows (0.25 s doubling to 8 s): a flush every
  // second against a server that is down costs one refused connect per
  // backoff, not one per flush. REQUIRES: w_mu_ held.
  base::Status Up() {
    auto all_up = [&] {
      for (auto& w : ws_) {
        if (PQstatus(w.get()) != CONNECTION_OK) return false;
      }
      return true;
    };
    if (ready_ && all_up()) return {};
    auto now = std::chrono::steady_clock::now();
    if (now < next_attempt_) {
      return base::Status::Error(last_error_ + " (next attempt within " +
                                 Num(backoff_) + " s)");
    }
    base::Status s;
    if (!ready_) {
      s = FirstConnect();
    } else {
      for (auto& w : ws_) {
        if (s = Reconnect(w.get()); !s.ok()) break;
      }
    }
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

  PostgresOptions o_;
  mutable std::mutex w_mu_;  // guards ws_, next_seq_, retrying_, min_mark_
  std::mutex r_mu_;          // guards r_
  std::mutex f_mu_;          // guards f_ (Changes)
  std::vector<Conn> ws_;     // the writers, one per part
  Conn r_, f_;
  uint64_t next_seq_ = 1;
  uint64_t min_mark_ = 0;  // the lowest part mark (at connect, or the last
                           // batch every part committed)
  bool fresh_ = false;     // no batch of this sink committed yet
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
