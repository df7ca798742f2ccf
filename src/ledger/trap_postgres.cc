// TrapTables in the fleet's PostgreSQL database (trap_tables.h). Every sink
// writes the same three tables: a harvest recorded by one sink's trap site
// and the mail that arrives at another meet on (ref, minute), which the
// tokens carry. Each batch is one transaction of three upserts fed by
// arrays (one round trip per table, not per row); rows are merged per key
// here first (an upsert may not touch a row twice) and written in key
// order, so two sinks writing the same rows never deadlock.
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "ledger/postgres_sql.h"
#include "ledger/trap_tables.h"

namespace ledger {
namespace {

using pg::Res;

// Migration i takes the trap tables from version i to i + 1, recorded in a
// version table of their own (the sources' spamsink_schema is untouched, as
// in SQLite), under an advisory lock of their own.
const char* const kTrapMigrations[] = {
    R"sql(
CREATE TABLE trap_harvests (
  ref bigint NOT NULL, minute bigint NOT NULL,
  ip text NOT NULL, user_agent text NOT NULL, label text NOT NULL,
  first_page text NOT NULL, first_seen float8 NOT NULL,
  last_seen float8 NOT NULL, pages bigint NOT NULL, addresses bigint NOT NULL,
  PRIMARY KEY (ref, minute));
CREATE INDEX trap_harvests_by_ip ON trap_harvests (ip, label);
CREATE TABLE trap_links (
  sender text NOT NULL, ref bigint NOT NULL, minute bigint NOT NULL,
  first_spam float8 NOT NULL, last_spam float8 NOT NULL, hits bigint NOT NULL,
  PRIMARY KEY (sender, ref, minute));
CREATE INDEX trap_links_by_harvest ON trap_links (ref, minute);
CREATE TABLE trap_domains (
  domain text PRIMARY KEY, recipients bigint NOT NULL,
  linked bigint NOT NULL, plain bigint NOT NULL);
)sql",
};
static_assert(std::size(kTrapMigrations) == kPostgresTrapSchemaVersion);
constexpr int kTrapLockKey = 7312;  // the sources' migration takes 7311

// Text columns take valid UTF-8 without NUL only (the database refuses the
// whole batch otherwise); user agents and recipients are whatever the
// client sent, so any other byte becomes '?'.
std::string Utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    size_t n = c < 0x80         ? 1
               : (c >> 5) == 6  ? 2
               : (c >> 4) == 14 ? 3
               : (c >> 3) == 30 ? 4
                                : 0;
    bool ok = n != 0 && c != 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (s[i + k] & 0xC0) == 0x80;
    if (ok && n > 1) {  // no overlong forms, surrogates or > U+10FFFF
      uint32_t cp = c & (0x7F >> n);
      for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[n] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    }
    if (!ok) {
      out += '?';
      ++i;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

base::Status Migrate(PGconn* c) {
  if (auto s = pg::Exec(c, "BEGIN"); !s.ok()) return s;
  auto fail = [&](base::Status s) {
    pg::Exec(c, "ROLLBACK");
    return s;
  };
  if (auto s = pg::Exec(c, "SELECT pg_advisory_xact_lock(" +
                               std::to_string(kTrapLockKey) +
                               "); CREATE TABLE IF NOT EXISTS trap_schema "
                               "(version int NOT NULL)");
      !s.ok()) {
    return fail(s);
  }
  auto v = pg::Run(c, "SELECT coalesce(max(version), 0) FROM trap_schema");
  if (!v.ok()) return fail(v.status());
  int version = std::atoi(PQgetvalue(v->get(), 0, 0));
  if (version > kPostgresTrapSchemaVersion) {
    return fail(base::Status::Error(
        std::string(pg::kSetting) + ": trap schema version " +
        std::to_string(version) + " is newer than this build's " +
        std::to_string(kPostgresTrapSchemaVersion) + "; upgrade spamsink"));
  }
  for (int i = version; i < kPostgresTrapSchemaVersion; ++i) {
    if (auto s = pg::Exec(c, kTrapMigrations[i]); !s.ok()) return fail(s);
  }
  if (auto s = pg::Exec(
          c, "DELETE FROM trap_schema; INSERT INTO trap_schema VALUES (" +
                 std::to_string(kPostgresTrapSchemaVersion) + ")");
      !s.ok()) {
    return fail(s);
  }
  return pg::Exec(c, "COMMIT");
}

// An array literal ("{...}") of text elements.
class Array {
 public:
  void Add(const std::string& v) { pg::AddElement(&text_, v); }
  void Add(int64_t v) { Add(std::to_string(v)); }
  void Add(double v) { Add(pg::Num(v)); }
  std::string Done() const { return text_ + "}"; }

 private:
  std::string text_ = "{";
};

uint64_t U(PGresult* r, int row, int col) {
  return std::strtoull(PQgetvalue(r, row, col), nullptr, 10);
}
double D(PGresult* r, int row, int col) {
  return std::strtod(PQgetvalue(r, row, col), nullptr);
}

class PostgresTrapTables final : public TrapTables {
 public:
  explicit PostgresTrapTables(PostgresOptions o) : o_(std::move(o)) {}

  base::Status Init() {
    auto w = pg::Connect(o_);
    if (!w.ok()) return w.status();
    w_ = std::move(w).value();
    if (auto s = Migrate(w_.get()); !s.ok()) return s;
    auto r = pg::Connect(o_);
    if (!r.ok()) return r.status();
    r_ = std::move(r).value();
    return {};
  }

  base::Status Commit(const std::vector<traps::Harvest>& harvests,
                      const std::vector<TrapHit>& hits) override {
    // Merged per key, in key order (see the file comment).
    struct H {
      traps::Harvest first;
      double first_seen, last_seen;
      int64_t pages = 0, addresses = 0;
    };
    std::map<std::pair<int64_t, int64_t>, H> hs;
    for (const auto& h : harvests) {
      auto [it, fresh] =
          hs.try_emplace({int64_t{h.ref}, h.minute}, H{h, h.time, h.time});
      H& m = it->second;
      m.first_seen = std::min(m.first_seen, h.time);
      m.last_seen = std::max(m.last_seen, h.time);
      m.pages++;
      m.addresses += h.addresses;
    }
    struct L {
      double first, last;
      int64_t hits = 0;
    };
    std::map<std::tuple<std::string, int64_t, int64_t>, L> ls;
    struct Dm {
      int64_t recipients = 0, linked = 0, plain = 0;
    };
    std::map<std::string, Dm> ds;
    for (const auto& x : hits) {
      if (x.valid) {
        auto [it, fresh] = ls.try_emplace(
            {Utf8(x.sender), int64_t{x.ref}, x.minute}, L{x.time, x.time});
        it->second.first = std::min(it->second.first, x.time);
        it->second.last = std::max(it->second.last, x.time);
        it->second.hits++;
      }
      Dm& d = ds[Utf8(x.domain)];
      d.recipients++;
      (x.valid ? d.linked : d.plain)++;
    }
    std::vector<Array> h(10), l(6), d(4);
    for (const auto& [key, m] : hs) {
      h[0].Add(key.first);
      h[1].Add(key.second);
      h[2].Add(Utf8(m.first.ip));
      h[3].Add(Utf8(m.first.user_agent));
      h[4].Add(Utf8(m.first.label));
      h[5].Add(Utf8(m.first.page));
      h[6].Add(m.first_seen);
      h[7].Add(m.last_seen);
      h[8].Add(m.pages);
      h[9].Add(m.addresses);
    }
    for (const auto& [key, m] : ls) {
      l[0].Add(std::get<0>(key));
      l[1].Add(std::get<1>(key));
      l[2].Add(std::get<2>(key));
      l[3].Add(m.first);
      l[4].Add(m.last);
      l[5].Add(m.hits);
    }
    for (const auto& [domain, m] : ds) {
      d[0].Add(domain);
      d[1].Add(m.recipients);
      d[2].Add(m.linked);
      d[3].Add(m.plain);
    }
    std::lock_guard lock(w_mu_);
    PGconn* c = w_.get();
    if (auto s = Reconnect(c); !s.ok()) return s;
    if (auto s = pg::Exec(c, "BEGIN"); !s.ok()) return s;
    base::Status s;
    if (!hs.empty()) {
      s = Upsert(c,
                 "INSERT INTO trap_harvests SELECT * FROM unnest($1::bigint[], "
                 "$2::bigint[], $3::text[], $4::text[], $5::text[], "
                 "$6::text[], $7::float8[], $8::float8[], $9::bigint[], "
                 "$10::bigint[]) ORDER BY 1, 2 ON CONFLICT (ref, minute) DO "
                 "UPDATE SET first_seen = least(trap_harvests.first_seen, "
                 "excluded.first_seen), last_seen = "
                 "greatest(trap_harvests.last_seen, excluded.last_seen), "
                 "pages = trap_harvests.pages + excluded.pages, addresses = "
                 "trap_harvests.addresses + excluded.addresses",
                 h);
    }
    if (s.ok() && !ls.empty()) {
      s = Upsert(c,
                 "INSERT INTO trap_links SELECT * FROM unnest($1::text[], "
                 "$2::bigint[], $3::bigint[], $4::float8[], $5::float8[], "
                 "$6::bigint[]) ORDER BY 1, 2, 3 ON CONFLICT (sender, ref, "
                 "minute) DO UPDATE SET first_spam = "
                 "least(trap_links.first_spam, excluded.first_spam), "
                 "last_spam = greatest(trap_links.last_spam, "
                 "excluded.last_spam), hits = trap_links.hits + excluded.hits",
                 l);
    }
    if (s.ok() && !ds.empty()) {
      s = Upsert(c,
                 "INSERT INTO trap_domains SELECT * FROM unnest($1::text[], "
                 "$2::bigint[], $3::bigint[], $4::bigint[]) ORDER BY 1 ON "
                 "CONFLICT (domain) DO UPDATE SET recipients = "
                 "trap_domains.recipients + excluded.recipients, linked = "
                 "trap_domains.linked + excluded.linked, plain = "
                 "trap_domains.plain + excluded.plain",
                 d);
    }
    if (!s.ok()) {
      pg::Exec(c, "ROLLBACK");
      return s;
    }
    return pg::Exec(c, "COMMIT");
  }

  base::Result<uint64_t> Expire(double cutoff) override {
    std::lock_guard lock(w_mu_);
    PGconn* c = w_.get();
    if (auto s = Reconnect(c); !s.ok()) return s;
    std::string cut = pg::Num(cutoff);
    if (auto s = pg::Exec(c, "BEGIN"); !s.ok()) return s;
    auto links = pg::Run(c, "DELETE FROM trap_links WHERE last_spam < $1",
                         {cut.c_str()});
    if (!links.ok()) return Rollback(c, links.status());
    auto harvests = pg::Run(
        c,
        "DELETE FROM trap_harvests h WHERE last_seen < $1 AND NOT EXISTS "
        "(SELECT 1 FROM trap_links l WHERE l.ref = h.ref AND l.minute = "
        "h.minute)",
        {cut.c_str()});
    if (!harvests.ok()) return Rollback(c, harvests.status());
    if (auto s = pg::Exec(c, "COMMIT"); !s.ok()) return s;
    return std::strtoull(PQcmdTuples(links->get()), nullptr, 10) +
           std::strtoull(PQcmdTuples(harvests->get()), nullptr, 10);
  }

  base::Result<std::vector<Harvester>> Harvesters(size_t limit) override {
    return Read([&]() -> base::Result<std::vector<Harvester>> {
      std::string n = std::to_string(limit);
      auto list = pg::Run(
          r_.get(),
          "SELECT ip, label, min(first_seen), max(last_seen), sum(pages), "
          "sum(addresses) FROM trap_harvests GROUP BY ip, label ORDER BY "
          "max(last_seen) DESC, ip COLLATE \"C\", label COLLATE \"C\" "
          "LIMIT $1",
          {n.c_str()});
      if (!list.ok()) return list.status();
      std::vector<Harvester> out;
      PGresult* r = list->get();
      for (int i = 0; i < PQntuples(r); ++i) {
        Harvester h;
        h.ip = PQgetvalue(r, i, 0);
        h.label = PQgetvalue(r, i, 1);
        h.first_harvest = D(r, i, 2);
        h.last_harvest = D(r, i, 3);
        h.pages = U(r, i, 4);
        h.addresses = U(r, i, 5);
        const char* p[] = {h.ip.c_str(), h.label.c_str()};
        auto agents = pg::Run(r_.get(),
                              "SELECT DISTINCT user_agent FROM trap_harvests "
                              "WHERE ip = $1 AND label = $2 LIMIT 8",
                              {p[0], p[1]});
        if (!agents.ok()) return agents.status();
        for (int k = 0; k < PQntuples(agents->get()); ++k) {
          h.user_agents.push_back(PQgetvalue(agents->get(), k, 0));
        }
        auto senders = pg::Run(
            r_.get(),
            "SELECT l.sender, min(l.first_spam), max(l.last_spam), "
            "sum(l.hits), min(l.first_spam - h.first_seen) FROM trap_links l "
            "JOIN trap_harvests h USING (ref, minute) WHERE h.ip = $1 AND "
            "h.label = $2 GROUP BY l.sender ORDER BY min(l.first_spam), "
            "l.sender COLLATE \"C\" LIMIT 100",
            {p[0], p[1]});
        if (!senders.ok()) return senders.status();
        PGresult* s = senders->get();
        for (int k = 0; k < PQntuples(s); ++k) {
          h.senders.push_back(TrapSender{PQgetvalue(s, k, 0), D(s, k, 1),
                                         D(s, k, 2), D(s, k, 4), U(s, k, 3)});
        }
        out.push_back(std::move(h));
      }
      return out;
    });
  }

  base::Result<std::vector<TrapLink>> LinksOf(
      std::string_view sender_ip) override {
    std::string sender = Utf8(sender_ip);
    return Read([&]() -> base::Result<std::vector<TrapLink>> {
      auto q = pg::Run(
          r_.get(),
          "SELECT h.ip, h.label, h.user_agent, h.first_page, h.first_seen, "
          "l.minute, l.first_spam, l.last_spam, l.hits FROM trap_links l "
          "LEFT JOIN trap_harvests h USING (ref, minute) WHERE l.sender = $1 "
          "ORDER BY l.first_spam, l.ref, l.minute LIMIT 100",
          {sender.c_str()});
      if (!q.ok()) return q.status();
      PGresult* r = q->get();
      std::vector<TrapLink> out;
      for (int i = 0; i < PQntuples(r); ++i) {
        TrapLink l;
        l.harvest_known = !PQgetisnull(r, i, 4);
        l.harvester_ip = PQgetvalue(r, i, 0);
        l.label = PQgetvalue(r, i, 1);
        l.user_agent = PQgetvalue(r, i, 2);
        l.page = PQgetvalue(r, i, 3);
        l.harvest_time = l.harvest_known ? D(r, i, 4) : double(U(r, i, 5)) * 60;
        l.first_spam = D(r, i, 6);
        l.last_spam = D(r, i, 7);
        l.hits = U(r, i, 8);
        l.delay_seconds = l.first_spam - l.harvest_time;
        out.push_back(std::move(l));
      }
      return out;
    });
  }

  base::Result<std::vector<TrapDomain>> Domains() override {
    return Read([&]() -> base::Result<std::vector<TrapDomain>> {
      auto q = pg::Run(r_.get(),
                       "SELECT domain, recipients, linked, plain FROM "
                       "trap_domains ORDER BY recipients DESC, domain "
                       "COLLATE \"C\"");
      if (!q.ok()) return q.status();
      PGresult* r = q->get();
      std::vector<TrapDomain> out;
      for (int i = 0; i < PQntuples(r); ++i) {
        out.push_back(TrapDomain{PQgetvalue(r, i, 0), U(r, i, 1), U(r, i, 2),
                                 U(r, i, 3)});
      }
      return out;
    });
  }

  base::Result<std::vector<std::string>> HarvesterIps() override {
    return Read([&]() -> base::Result<std::vector<std::string>> {
      auto q = pg::Run(r_.get(),
                       "SELECT DISTINCT ip COLLATE \"C\" FROM trap_harvests "
                       "WHERE ip != '' ORDER BY 1");
      if (!q.ok()) return q.status();
      std::vector<std::string> out;
      for (int i = 0; i < PQntuples(q->get()); ++i) {
        out.push_back(PQgetvalue(q->get(), i, 0));
      }
      return out;
    });
  }

 private:
  static base::Status Reconnect(PGconn* c) {
    if (PQstatus(c) == CONNECTION_OK) return {};
    PQreset(c);
    if (PQstatus(c) != CONNECTION_OK) {
      return pg::ConnError(c, "reconnect failed");
    }
    return {};
  }
  static base::Status Rollback(PGconn* c, base::Status s) {
    pg::Exec(c, "ROLLBACK");
    return s;
  }
  // Under r_mu_, reconnected; once more when the connection turned out to
  // be lost (libpq notices only when a query fails).
  template <typename F>
  std::invoke_result_t<F> Read(F f) {
    std::lock_guard lock(r_mu_);
    for (int attempt = 0;; ++attempt) {
      if (auto s = Reconnect(r_.get()); !s.ok()) return s;
      auto r = f();
      if (r.ok() || attempt > 0 || PQstatus(r_.get()) == CONNECTION_OK) {
        return r;
      }
    }
  }
  static base::Status Upsert(PGconn* c, const char* sql,
                             const std::vector<Array>& columns) {
    std::vector<std::string> text;
    for (const auto& a : columns) text.push_back(a.Done());
    std::vector<const char*> params;
    for (const auto& t : text) params.push_back(t.c_str());
    auto r = pg::Run(c, sql, params);
    return r.ok() ? base::Status() : r.status();
  }

  PostgresOptions o_;
  std::mutex w_mu_;  // guards w_ (the writer's)
  std::mutex r_mu_;  // guards r_ (queries)
  pg::Conn w_, r_;
};

}  // namespace

base::Result<std::unique_ptr<TrapTables>> OpenPostgresTrapTables(
    const PostgresOptions& options) {
  auto t = std::make_unique<PostgresTrapTables>(options);
  if (auto s = t->Init(); !s.ok()) return s;
  return std::unique_ptr<TrapTables>(std::move(t));
}

}  // namespace ledger
