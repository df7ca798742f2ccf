#include "ledger/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>

#include "ledger/hourly_sql.h"
#include "ledger/json_fields.h"
#include "ledger/sqlite_select.h"

namespace ledger {
namespace {

#include "ledger/sqlite_schema.inc"  // kMigrations, kColumns

// Statement handle owned by a unique_ptr.
struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

class SqliteStore final : public Store {
 public:
  ~SqliteStore() override {
    std::scoped_lock lock(w_mu_, r_mu_);
    upsert_.reset();
    select_one_w_.reset();
    select_one_r_.reset();
    // The reader goes first: the last connection to close checkpoints the
    // WAL into the database file and removes it, and only a writer can.
    if (r_) sqlite3_close_v2(r_);
    if (w_) {
      sqlite3_exec(w_, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr,
                   nullptr);
      sqlite3_close_v2(w_);
    }
  }

  base::Status Init(const std::string& path, const SqliteOptions& o) {
    read_only_ = o.read_only;
    path_ = path;
    options_ = o;
    if (!read_only_) {
      if (auto s = OpenConn(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, o,
                            &w_);
          !s.ok()) {
        return s;
      }
      if (auto s =
              Exec(w_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
          !s.ok()) {
        return s;
      }
      if (auto s = Migrate(); !s.ok()) return s;
      auto used = SqliteUsedBytes(w_);
      if (!used.ok()) return used.status();
      db_bytes_ = *used;
    }
    if (auto s = OpenConn(path, SQLITE_OPEN_READONLY, o, &r_); !s.ok()) {
      return s;
    }
    auto v = UserVersion(r_);
    if (!v.ok()) return v.status();
    // A reader accepts older schemas it can read (a running spamsink migrates).
    if (*v > kSchemaVersion || *v < kMinReadableVersion ||
        (!read_only_ && *v != kSchemaVersion)) {
      return base::Status::Error(
          path + ": schema version " + std::to_string(*v) + ", want " +
          std::to_string(kSchemaVersion) +
          (*v == 0 ? " (not a spamsink database?)" : ""));
    }
    read_columns_ = ReadColumns(*v);
    read_version_ = *v;
    if (!read_only_) {
      std::string marks = "?";
      for (int i = 1; i < kNumColumns; ++i) marks += ",?";
      if (auto s =
              Prepare(w_,
                      "INSERT OR REPLACE INTO sources (" +
                          std::string(kColumns) + ") VALUES (" + marks + ")",
                      &upsert_);
          !s.ok()) {
        return s;
      }
      if (auto s = PrepareSelectOne(w_, kColumns, &select_one_w_); !s.ok()) {
        return s;
      }
    }
    return PrepareSelectOne(r_, read_columns_, &select_one_r_);
  }

  base::Status Apply(const std::vector<SourceRecord>& deltas) override {
    if (read_only_) return base::Status::Error("store is read-only");
    std::lock_guard lock(w_mu_);
    if (auto s = Exec(w_, "BEGIN IMMEDIATE"); !s.ok()) return s;
    Totals add;
    HourlyBatch hours;
    for (const auto& d : deltas) {
      SourceRecord rec;
      auto found = Load(w_, select_one_w_.get(), d.ip, &rec);
      if (!found.ok()) return Rollback(found.status());
      hours.Add(d, !*found);
      if (!*found) {
        rec = SourceRecord();
        rec.ip = d.ip;
        add.sources++;
      }
      MergeRecord(&rec, d);
      add.connections += d.connections;
      add.messages += d.messages;
      add.recipients += d.recipients;
      add.bytes += d.bytes;
      add.seconds_held += d.seconds_held;
      if (auto s = Store(rec); !s.ok()) return Rollback(s);
    }
    if (auto s = AddTotals(add, +1); !s.ok()) return Rollback(s);
    if (auto s = hourly::SqliteAdd(w_, hours); !s.ok()) return Rollback(s);
    auto evicted = EnforceBounds(add.sources);
    if (!evicted.ok()) return Rollback(evicted.status());
    if (auto s = Exec(w_, "COMMIT"); !s.ok()) return Rollback(s);
    evicted_ += *evicted;
    created_ += add.sources;
    return {};
  }

  StoreUsage Usage() override {
    StoreUsage u;
    u.db_bytes = db_bytes_.load();
    u.max_db_bytes = options_.max_db_bytes;
    u.max_sources = options_.max_sources;
    u.evicted = evicted_.load();
    u.created = created_.load();
    u.at_budget = at_budget_.load();
    return u;
  }

  base::Result<std::vector<HourCounts>> SourceHours(const base::IpAddress& ip,
                                                    double since) override {
    std::lock_guard lock(r_mu_);
    if (read_version_ < 4) return std::vector<HourCounts>();
    return hourly::SqliteRead(r_, &ip, since);
  }
  base::Result<std::vector<HourCounts>> Hours(double since) override {
    std::lock_guard lock(r_mu_);
    if (read_version_ < 4) return std::vector<HourCounts>();
    return hourly::SqliteRead(r_, nullptr, since);
  }
  base::Result<uint64_t> ExpireHours(double cutoff) override {
    if (read_only_) return base::Status::Error("store is read-only");
    std::lock_guard lock(w_mu_);
    return hourly::SqliteExpire(w_, cutoff);
  }

  // The oldest records last seen before ?1, at most ?2 (last_seen index).
  static constexpr const char* kOldestSql =
      "SELECT * FROM sources WHERE last_seen < ?1 ORDER BY last_seen LIMIT ?2";

  base::Result<uint64_t> Expire(double cutoff) override {
    if (read_only_) return base::Status::Error("store is read-only");
    std::lock_guard lock(w_mu_);
    if (auto s = Exec(w_, "BEGIN IMMEDIATE"); !s.ok()) return s;
    Stmt st;
    if (auto s =
            Prepare(w_,
                    "SELECT COUNT(*), TOTAL(connections), TOTAL(messages), "
                    "TOTAL(recipients), TOTAL(bytes), TOTAL(seconds_held) "
                    "FROM (" +
                        std::string(kOldestSql) + ")",
                    &st);
        !s.ok()) {
      return Rollback(s);
    }
    sqlite3_bind_double(st.get(), 1, cutoff);
    sqlite3_bind_int64(st.get(), 2, int64_t(kExpireBatch));
    if (sqlite3_step(st.get()) != SQLITE_ROW) return Rollback(Error(w_));
    Totals sub;
    sub.sources = sqlite3_column_int64(st.get(), 0);
    sub.connections = sqlite3_column_int64(st.get(), 1);
    sub.messages = sqlite3_column_int64(st.get(), 2);
    sub.recipients = sqlite3_column_int64(st.get(), 3);
    sub.bytes = sqlite3_column_int64(st.get(), 4);
    sub.seconds_held = sqlite3_column_double(st.get(), 5);
    st.reset();
    if (sub.sources == 0) {
      Exec(w_, "ROLLBACK");
      return uint64_t(0);
    }
    // The same rows as counted above: this transaction holds the write lock.
    if (auto s = Prepare(w_,
                         "DELETE FROM sources WHERE ip IN (SELECT ip FROM (" +
                             std::string(kOldestSql) + "))",
                         &st);
        !s.ok()) {
      return Rollback(s);
    }
    sqlite3_bind_double(st.get(), 1, cutoff);
    sqlite3_bind_int64(st.get(), 2, int64_t(kExpireBatch));
    if (sqlite3_step(st.get()) != SQLITE_DONE) return Rollback(Error(w_));
    st.reset();
    if (auto s = AddTotals(sub, -1); !s.ok()) return Rollback(s);
    if (auto s = Exec(w_, "COMMIT"); !s.ok()) return Rollback(s);
    return sub.sources;
  }

  base::Result<std::optional<SourceRecord>> Get(
      const base::IpAddress& ip) override {
    std::lock_guard lock(r_mu_);
    SourceRecord rec;
    auto found = Load(r_, select_one_r_.get(), ip, &rec);
    if (!found.ok()) return found.status();
    if (!*found) return std::optional<SourceRecord>();
    return std::optional<SourceRecord>(std::move(rec));
  }

  base::Result<SourcePage> Query(const SourceQuery& q) override {
    auto [sql, where, bind] = BuildSqliteSelect(q, read_columns_);
    std::lock_guard lock(r_mu_);
    SourcePage page;
    // Read the page and the count in one read transaction (one snapshot).
    if (auto s = Exec(r_, "BEGIN"); !s.ok()) return s;
    Stmt st;
    if (auto s = Prepare(r_, sql, &st); !s.ok()) return EndRead(s);
    bind(st.get());
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      page.records.push_back(Decode(st.get()));
    }
    if (rc != SQLITE_DONE) return EndRead(Error(r_));
    st.reset();
    if (where.empty()) {
      auto t = SqliteReadTotals(r_);
      if (!t.ok()) return EndRead(t.status());
      page.total = t->sources;
    } else {
      if (auto s = Prepare(r_, "SELECT COUNT(*) FROM sources" + where, &st);
          !s.ok()) {
        return EndRead(s);
      }
      bind(st.get());
      if (sqlite3_step(st.get()) != SQLITE_ROW) return EndRead(Error(r_));
      page.total = sqlite3_column_int64(st.get(), 0);
    }
    Exec(r_, "COMMIT");
    return page;
  }

  // A scan reads through its own connection (one snapshot, no lock held),
  // so that a long export never makes API queries wait; a database that
  // cannot be opened twice (in memory) is scanned through r_ instead.
  base::Status Scan(const SourceQuery& q, const Visitor& each) override {
    auto [sql, where, bind] = BuildSqliteSelect(q, read_columns_);
    bool shared =
        path_.empty() || path_ == ":memory:" || path_.rfind("file:", 0) == 0;
    sqlite3* db = nullptr;
    std::unique_lock<std::mutex> lock(r_mu_, std::defer_lock);
    if (shared) {
      lock.lock();
      db = r_;
    } else {
      SqliteOptions o = options_;
      o.cache_mib = 2;  // a sequential read needs no big cache
      if (auto s = OpenConn(path_, SQLITE_OPEN_READONLY, o, &db); !s.ok()) {
        sqlite3_close_v2(db);
        return s;
      }
    }
    base::Status result;
    {
      Stmt st;
      if (auto s = Exec(db, "BEGIN"); !s.ok()) {
        result = s;
      } else if (auto p = Prepare(db, sql, &st); !p.ok()) {
        result = p;
      } else {
        bind(st.get());
        int rc;
        while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
          if (auto e = each(Decode(st.get())); !e.ok()) {
            result = e;
            break;
          }
        }
        if (result.ok() && rc != SQLITE_DONE) result = Error(db);
      }
    }
    Exec(db, "ROLLBACK");
    if (!shared) sqlite3_close_v2(db);
    return result;
  }

  base::Result<Totals> GetTotals() override {
    std::lock_guard lock(r_mu_);
    return SqliteReadTotals(r_);
  }

 private:
  static base::Status Error(sqlite3* db) {
    return base::Status::Error(std::string("sqlite: ") + sqlite3_errmsg(db));
  }

  static base::Status Exec(sqlite3* db, const std::string& sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
      std::string m = msg ? msg : sqlite3_errmsg(db);
      sqlite3_free(msg);
      return base::Status::Error("sqlite: " + m);
    }
    return {};
  }

  static base::Status Prepare(sqlite3* db, const std::string& sql, Stmt* out) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), int(sql.size()), &st, nullptr) !=
        SQLITE_OK) {
      return Error(db);
    }
    out->reset(st);
    return {};
  }

  static base::Status PrepareSelectOne(sqlite3* db, const char* columns,
                                       Stmt* out) {
    return Prepare(
        db, "SELECT " + std::string(columns) + " FROM sources WHERE ip = ?",
        out);
  }

  static base::Status OpenConn(const std::string& path, int flags,
                               const SqliteOptions& o, sqlite3** out) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
      std::string m = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      return base::Status::Error("cannot open " + path + ": " + m);
    }
    *out = db;
    sqlite3_busy_timeout(db, o.busy_timeout_ms);
    return Exec(db, "PRAGMA cache_size=-" + std::to_string(o.cache_mib * 1024));
  }

  static base::Result<int> UserVersion(sqlite3* db) {
    Stmt st;
    if (auto s = Prepare(db, "PRAGMA user_version", &st); !s.ok()) return s;
    if (sqlite3_step(st.get()) != SQLITE_ROW) return Error(db);
    return sqlite3_column_int(st.get(), 0);
  }

  base::Status Migrate() {
    if (auto s = Exec(w_, "BEGIN IMMEDIATE"); !s.ok()) return s;
    auto v = UserVersion(w_);
    if (!v.ok()) return Rollback(v.status());
    if (*v > kSchemaVersion) {
      return Rollback(base::Status::Error(
          "database schema version " + std::to_string(*v) +
          " is newer than this build's " + std::to_string(kSchemaVersion)));
    }
    for (int i = *v; i < kSchemaVersion; ++i) {
      if (auto s = Exec(w_, kMigrations[i]); !s.ok()) return Rollback(s);
    }
    if (auto s =
            Exec(w_, "PRAGMA user_version=" + std::to_string(kSchemaVersion));
        !s.ok()) {
      return Rollback(s);
    }
    return Exec(w_, "COMMIT");
  }

  base::Status Rollback(base::Status s) {
    Exec(w_, "ROLLBACK");
    return s;
  }
  base::Status EndRead(base::Status s) {
    Exec(r_, "ROLLBACK");
    return s;
  }

  // Reads the record for ip into *rec; false when there is none.
  static base::Result<bool> Load(sqlite3* db, sqlite3_stmt* st,
                                 const base::IpAddress& ip, SourceRecord* rec) {
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, ip.bytes().data(), 16, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      *rec = Decode(st);
      sqlite3_reset(st);
      return true;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return false;
    return Error(db);
  }

  static SourceRecord Decode(sqlite3_stmt* st) {
    SourceRecord r;
    std::array<uint8_t, 16> b{};
    if (sqlite3_column_bytes(st, 0) == 16) {
      std::memcpy(b.data(), sqlite3_column_blob(st, 0), 16);
    }
    r.ip = base::IpAddress::FromV6(b);
    int c = 1;
    auto u = [&] { return uint64_t(sqlite3_column_int64(st, c++)); };
    auto d = [&] { return sqlite3_column_double(st, c++); };
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
    ParseReasons(sqlite3_column_text(st, c++), &r);
    r.helo_names = ParseNames(sqlite3_column_text(st, c++));
    r.mail_from_domains = ParseNames(sqlite3_column_text(st, c++));
    r.rcpt_domains = ParseNames(sqlite3_column_text(st, c++));
    r.tarpitted_sessions = u();
    r.delay_seconds = d();
    r.replies_stuttered = u();
    r.slow_reads = u();
    ParseAddresses(sqlite3_column_text(st, c++), &r);
    return r;
  }

  base::Status Store(const SourceRecord& r) {
    sqlite3_stmt* st = upsert_.get();
    sqlite3_reset(st);
    int c = 1;
    auto u = [&](uint64_t v) { sqlite3_bind_int64(st, c++, int64_t(v)); };
    auto d = [&](double v) { sqlite3_bind_double(st, c++, v); };
    auto t = [&](const std::string& v) {
      sqlite3_bind_text(st, c++, v.data(), int(v.size()), SQLITE_TRANSIENT);
    };
    sqlite3_bind_blob(st, c++, r.ip.bytes().data(), 16, SQLITE_STATIC);
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
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? base::Status() : Error(w_);
  }

  // Within Apply's transaction: evicts what the bounds require after
  // new_sources were added; returns how many.
  base::Result<uint64_t> EnforceBounds(uint64_t new_sources) {
    uint64_t evict = 0;
    if (options_.max_sources != 0) {
      auto t = SqliteReadTotals(w_);
      if (!t.ok()) return t.status();
      if (t->sources > options_.max_sources) {
        evict = std::min(t->sources - options_.max_sources,
                         new_sources + kMaxEvictPerCommit);
      }
    }
    auto used = SqliteUsedBytes(w_);
    if (!used.ok()) return used.status();
    db_bytes_ = *used;
    bool full = options_.max_db_bytes != 0 && *used >= options_.max_db_bytes;
    at_budget_ = full;
    if (full) evict = std::max(evict, new_sources);
    if (evict == 0) return uint64_t(0);
    Stmt pick, del;
    if (auto s = Prepare(w_,
                         "SELECT ip FROM (SELECT ip, evidence, messages, "
                         "last_seen FROM sources ORDER BY last_seen ASC "
                         "LIMIT ?1) ORDER BY evidence != 0, messages, "
                         "last_seen LIMIT ?2",
                         &pick);
        !s.ok()) {
      return s;
    }
    if (auto s = Prepare(w_, "DELETE FROM sources WHERE ip = ?", &del);
        !s.ok()) {
      return s;
    }
    sqlite3_bind_int64(pick.get(), 1, int64_t(evict * 64));
    sqlite3_bind_int64(pick.get(), 2, int64_t(evict));
    std::vector<base::IpAddress> victims;
    int rc;
    while ((rc = sqlite3_step(pick.get())) == SQLITE_ROW) {
      std::array<uint8_t, 16> b{};
      if (sqlite3_column_bytes(pick.get(), 0) == 16) {
        std::memcpy(b.data(), sqlite3_column_blob(pick.get(), 0), 16);
      }
      victims.push_back(base::IpAddress::FromV6(b));
    }
    if (rc != SQLITE_DONE) return Error(w_);
    pick.reset();
    if (auto s = hourly::SqliteForget(w_, victims); !s.ok()) return s;
    Totals sub;
    for (const auto& ip : victims) {
      SourceRecord r;
      auto found = Load(w_, select_one_w_.get(), ip, &r);
      if (!found.ok()) return found.status();
      if (!*found) continue;
      sub.sources++;
      sub.connections += r.connections;
      sub.messages += r.messages;
      sub.recipients += r.recipients;
      sub.bytes += r.bytes;
      sub.seconds_held += r.seconds_held;
      sqlite3_reset(del.get());
      sqlite3_bind_blob(del.get(), 1, ip.bytes().data(), 16, SQLITE_STATIC);
      if (sqlite3_step(del.get()) != SQLITE_DONE) return Error(w_);
    }
    if (auto s = AddTotals(sub, -1); !s.ok()) return s;
    return sub.sources;
  }

  base::Status AddTotals(const Totals& t, int sign) {
    Stmt st;
    if (auto s =
            Prepare(w_,
                    "UPDATE totals SET sources = sources + ?1, "
                    "connections = connections + ?2, messages = messages + "
                    "?3, recipients = recipients + ?4, bytes = bytes + ?5, "
                    "seconds_held = seconds_held + ?6 WHERE id = 1",
                    &st);
        !s.ok()) {
      return s;
    }
    sqlite3_bind_int64(st.get(), 1, sign * int64_t(t.sources));
    sqlite3_bind_int64(st.get(), 2, sign * int64_t(t.connections));
    sqlite3_bind_int64(st.get(), 3, sign * int64_t(t.messages));
    sqlite3_bind_int64(st.get(), 4, sign * int64_t(t.recipients));
    sqlite3_bind_int64(st.get(), 5, sign * int64_t(t.bytes));
    sqlite3_bind_double(st.get(), 6, sign * t.seconds_held);
    return sqlite3_step(st.get()) == SQLITE_DONE ? base::Status() : Error(w_);
  }

  bool read_only_ = false;
  std::string path_;  // for the scans' own connections
  SqliteOptions options_;
  // r_'s select list: depends on the schema version a reader found.
  const char* read_columns_ = kColumns;
  int read_version_ = kSchemaVersion;
  std::mutex w_mu_;  // guards w_ and its statements
  std::mutex r_mu_;  // guards r_ and its statements
  sqlite3* w_ = nullptr;
  sqlite3* r_ = nullptr;
  Stmt upsert_, select_one_w_, select_one_r_;
  std::atomic<uint64_t> db_bytes_{0}, evicted_{0}, created_{0};
  std::atomic<bool> at_budget_{false};
};

}  // namespace

base::Result<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& path, const SqliteOptions& options) {
  auto store = std::make_unique<SqliteStore>();
  if (auto s = store->Init(path, options); !s.ok()) return s;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace ledger
