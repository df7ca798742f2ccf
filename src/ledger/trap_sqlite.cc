// TrapTables in the ledger's SQLite file (trap_tables.h): tables of their
// own beside the sources', through a connection of its own.
#include <sqlite3.h>

#include <mutex>

#include "ledger/trap_tables.h"

namespace ledger {
namespace {

// Tables of their own: the sources schema (PRAGMA user_version) is not
// touched; trap_schema holds this part's version for later migrations.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS trap_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS trap_harvests (
  ref INTEGER NOT NULL, minute INTEGER NOT NULL,
  ip TEXT NOT NULL, user_agent TEXT NOT NULL, label TEXT NOT NULL,
  first_page TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
  pages INTEGER NOT NULL, addresses INTEGER NOT NULL,
  PRIMARY KEY (ref, minute)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trap_harvests_by_ip ON trap_harvests (ip, label);
CREATE TABLE IF NOT EXISTS trap_links (
  sender TEXT NOT NULL, ref INTEGER NOT NULL, minute INTEGER NOT NULL,
  first_spam REAL NOT NULL, last_spam REAL NOT NULL, hits INTEGER NOT NULL,
  PRIMARY KEY (sender, ref, minute)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trap_links_by_harvest ON trap_links (ref, minute);
CREATE TABLE IF NOT EXISTS trap_domains (
  domain TEXT PRIMARY KEY NOT NULL, recipients INTEGER NOT NULL,
  linked INTEGER NOT NULL, plain INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO trap_schema SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM trap_schema);
)sql";

base::Status Error(sqlite3* db, const std::string& what) {
  return base::Status::Error("trap ledger: " + what + ": " +
                             sqlite3_errmsg(db));
}

// A prepared statement, finalized on every path.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(st_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, std::string_view v) {
    sqlite3_bind_text(st_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  Stmt& Bind(int i, double v) {
    sqlite3_bind_double(st_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(st_); }
  void Reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  std::string Text(int i) {
    auto p = sqlite3_column_text(st_, i);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  int64_t Int(int i) { return sqlite3_column_int64(st_, i); }
  double Real(int i) { return sqlite3_column_double(st_, i); }
  int Type(int i) { return sqlite3_column_type(st_, i); }

 private:
  sqlite3_stmt* st_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

class SqliteTrapTables final : public TrapTables {
 public:
  explicit SqliteTrapTables(sqlite3* db) : db_(db) {}
  ~SqliteTrapTables() override { sqlite3_close(db_); }

  base::Status Commit(const std::vector<traps::Harvest>& harvests,
                      const std::vector<TrapHit>& hits) override {
    std::lock_guard<std::mutex> lock(db_mu_);
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) !=
        SQLITE_OK) {
      return Error(db_, "begin");
    }
    Stmt harvest(
        db_,
        "INSERT INTO trap_harvests VALUES (?,?,?,?,?,?,?,?,1,?) "
        "ON CONFLICT (ref, minute) DO UPDATE SET "
        "last_seen = max(last_seen, excluded.last_seen), "
        "pages = pages + 1, addresses = addresses + excluded.addresses");
    Stmt link(
        db_,
        "INSERT INTO trap_links VALUES (?,?,?,?,?,1) "
        "ON CONFLICT (sender, ref, minute) DO UPDATE SET "
        "first_spam = min(first_spam, excluded.first_spam), "
        "last_spam = max(last_spam, excluded.last_spam), hits = hits + 1");
    Stmt domain(
        db_,
        "INSERT INTO trap_domains VALUES (?,1,?,?) "
        "ON CONFLICT (domain) DO UPDATE SET "
        "recipients = recipients + 1, linked = linked + excluded.linked, "
        "plain = plain + excluded.plain");
    bool ok = harvest.ok() && link.ok() && domain.ok();
    for (size_t i = 0; ok && i < harvests.size(); ++i) {
      const auto& h = harvests[i];
      harvest.Bind(1, int64_t{h.ref})
          .Bind(2, h.minute)
          .Bind(3, h.ip)
          .Bind(4, h.user_agent)
          .Bind(5, h.label)
          .Bind(6, h.page)
          .Bind(7, h.time)
          .Bind(8, h.time)
          .Bind(9, int64_t{h.addresses});
      ok = harvest.Step() == SQLITE_DONE;
      harvest.Reset();
    }
    for (size_t i = 0; ok && i < hits.size(); ++i) {
      const TrapHit& x = hits[i];
      bool valid = x.valid;
      if (valid) {
        link.Bind(1, x.sender)
            .Bind(2, int64_t{x.ref})
            .Bind(3, x.minute)
            .Bind(4, x.time)
            .Bind(5, x.time);
        ok = link.Step() == SQLITE_DONE;
        link.Reset();
      }
      domain.Bind(1, x.domain).Bind(2, int64_t{valid}).Bind(3, int64_t{!valid});
      ok = ok && domain.Step() == SQLITE_DONE;
      domain.Reset();
    }
    if (!ok) {
      base::Status s = Error(db_, "write");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return s;
    }
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      base::Status s = Error(db_, "commit");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return s;
    }
    return {};
  }

  base::Result<uint64_t> Expire(double cutoff) override {
    std::lock_guard<std::mutex> lock(db_mu_);
    Stmt links(db_, "DELETE FROM trap_links WHERE last_spam < ?");
    Stmt harvests(
        db_,
        "DELETE FROM trap_harvests WHERE last_seen < ? AND NOT EXISTS "
        "(SELECT 1 FROM trap_links l WHERE l.ref = trap_harvests.ref "
        "AND l.minute = trap_harvests.minute)");
    if (!links.ok() || !harvests.ok()) return Error(db_, "expire");
    uint64_t deleted = 0;
    links.Bind(1, cutoff);
    if (links.Step() != SQLITE_DONE) return Error(db_, "expire links");
    deleted += uint64_t(sqlite3_changes(db_));
    harvests.Bind(1, cutoff);
    if (harvests.Step() != SQLITE_DONE) return Error(db_, "expire harvests");
    deleted += uint64_t(sqlite3_changes(db_));
    return deleted;
  }

  base::Result<std::vector<Harvester>> Harvesters(size_t limit) override {
    std::lock_guard<std::mutex> lock(db_mu_);
    std::vector<Harvester> out;
    Stmt list(db_,
              "SELECT ip, label, min(first_seen), max(last_seen), sum(pages), "
              "sum(addresses) FROM trap_harvests GROUP BY ip, label "
              "ORDER BY max(last_seen) DESC LIMIT ?");
    Stmt agents(db_,
                "SELECT DISTINCT user_agent FROM trap_harvests "
                "WHERE ip = ? AND label = ? LIMIT 8");
    Stmt senders(db_,
                 "SELECT l.sender, min(l.first_spam), max(l.last_spam), "
                 "sum(l.hits), min(l.first_spam - h.first_seen) "
                 "FROM trap_links l JOIN trap_harvests h USING (ref, minute) "
                 "WHERE h.ip = ? AND h.label = ? GROUP BY l.sender "
                 "ORDER BY min(l.first_spam) LIMIT 100");
    if (!list.ok() || !agents.ok() || !senders.ok()) return Error(db_, "query");
    list.Bind(1, int64_t(limit));
    while (list.Step() == SQLITE_ROW) {
      Harvester h;
      h.ip = list.Text(0);
      h.label = list.Text(1);
      h.first_harvest = list.Real(2);
      h.last_harvest = list.Real(3);
      h.pages = uint64_t(list.Int(4));
      h.addresses = uint64_t(list.Int(5));
      agents.Bind(1, h.ip).Bind(2, h.label);
      while (agents.Step() == SQLITE_ROW)
        h.user_agents.push_back(agents.Text(0));
      agents.Reset();
      senders.Bind(1, h.ip).Bind(2, h.label);
      while (senders.Step() == SQLITE_ROW) {
        h.senders.push_back(TrapSender{senders.Text(0), senders.Real(1),
                                       senders.Real(2), senders.Real(4),
                                       uint64_t(senders.Int(3))});
      }
      senders.Reset();
      out.push_back(std::move(h));
    }
    return out;
  }

  base::Result<std::vector<TrapLink>> LinksOf(
      std::string_view sender_ip) override {
    std::lock_guard<std::mutex> lock(db_mu_);
    Stmt q(db_,
           "SELECT h.ip, h.label, h.user_agent, h.first_page, h.first_seen, "
           "l.minute, l.first_spam, l.last_spam, l.hits "
           "FROM trap_links l LEFT JOIN trap_harvests h USING (ref, minute) "
           "WHERE l.sender = ? ORDER BY l.first_spam LIMIT 100");
    if (!q.ok()) return Error(db_, "query");
    q.Bind(1, sender_ip);
    std::vector<TrapLink> out;
    while (q.Step() == SQLITE_ROW) {
      TrapLink l;
      l.harvest_known = q.Type(4) != SQLITE_NULL;
      l.harvester_ip = q.Text(0);
      l.label = q.Text(1);
      l.user_agent = q.Text(2);
      l.page = q.Text(3);
      l.harvest_time = l.harvest_known ? q.Real(4) : double(q.Int(5)) * 60;
      l.first_spam = q.Real(6);
      l.last_spam = q.Real(7);
      l.hits = uint64_t(q.Int(8));
      l.delay_seconds = l.first_spam - l.harvest_time;
      out.push_back(std::move(l));
    }
    return out;
  }

  base::Result<std::vector<TrapDomain>> Domains() override {
    std::lock_guard<std::mutex> lock(db_mu_);
    Stmt q(db_,
           "SELECT domain, recipients, linked, plain FROM trap_domains "
           "ORDER BY recipients DESC, domain");
    if (!q.ok()) return Error(db_, "query");
    std::vector<TrapDomain> out;
    while (q.Step() == SQLITE_ROW) {
      out.push_back(TrapDomain{q.Text(0), uint64_t(q.Int(1)),
                               uint64_t(q.Int(2)), uint64_t(q.Int(3))});
    }
    return out;
  }

  base::Result<std::vector<std::string>> HarvesterIps() override {
    std::lock_guard<std::mutex> lock(db_mu_);
    Stmt q(db_,
           "SELECT DISTINCT ip FROM trap_harvests WHERE ip != '' ORDER BY ip");
    if (!q.ok()) return Error(db_, "query");
    std::vector<std::string> out;
    while (q.Step() == SQLITE_ROW) out.push_back(q.Text(0));
    return out;
  }

 private:
  std::mutex db_mu_;  // guards db_ (one connection, statements in turn)
  sqlite3* db_;
};

}  // namespace

base::Result<std::unique_ptr<TrapTables>> OpenSqliteTrapTables(
    const std::string& db_path, bool read_only) {
  sqlite3* db = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY
                        : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(db_path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    base::Status s = Error(db, "cannot open " + db_path);
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 5000);
  if (!read_only) {
    char* msg = nullptr;
    std::string sql = std::string("PRAGMA journal_mode=WAL; ") +
                      "PRAGMA synchronous=NORMAL; " + kSchema;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
      std::string m = msg ? msg : "?";
      sqlite3_free(msg);
      sqlite3_close(db);
      return base::Status::Error("trap ledger: schema: " + m);
    }
  }
  return std::unique_ptr<TrapTables>(new SqliteTrapTables(db));
}

}  // namespace ledger
