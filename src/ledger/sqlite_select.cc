#include "ledger/sqlite_select.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>

namespace ledger {

SqliteSelect BuildSqliteSelect(const SourceQuery& q, const char* columns) {
  std::string where;
  auto add = [](std::string* w, const std::string& cond) {
    *w += w->empty() ? " WHERE " : " AND ";
    *w += cond;
  };
  if (q.since) add(&where, "last_seen >= :since");
  if (q.until) add(&where, "last_seen < :until");
  if (q.cidr) add(&where, "ip BETWEEN :lo AND :hi");
  if (q.min_messages) add(&where, "messages >= :min_messages");
  // "evidence != 0" lets SQLite use the partial index.
  if (q.evidence) {
    add(&where, "evidence != 0 AND (evidence & :evidence) = :evidence");
  }
  std::array<uint8_t, 16> lo{}, hi{};
  if (q.cidr) {
    lo = q.cidr->network().bytes();
    hi = lo;
    int bits = CidrBits128(*q.cidr);
    for (int i = 0; i < 16; ++i) {
      int keep = bits - i * 8;
      if (keep >= 8) continue;
      hi[i] |= keep <= 0 ? 0xff : uint8_t(0xff >> keep);
    }
  }
  auto bind = [q, lo, hi](sqlite3_stmt* st) {
    auto idx = [&](const char* name) {
      return sqlite3_bind_parameter_index(st, name);
    };
    if (q.since) sqlite3_bind_double(st, idx(":since"), *q.since);
    if (q.until) sqlite3_bind_double(st, idx(":until"), *q.until);
    if (q.cidr) {
      sqlite3_bind_blob(st, idx(":lo"), lo.data(), 16, SQLITE_TRANSIENT);
      sqlite3_bind_blob(st, idx(":hi"), hi.data(), 16, SQLITE_TRANSIENT);
    }
    if (q.min_messages) {
      sqlite3_bind_int64(st, idx(":min_messages"), int64_t(q.min_messages));
    }
    if (q.evidence) sqlite3_bind_int64(st, idx(":evidence"), q.evidence);
    if (q.after) {
      sqlite3_bind_blob(st, idx(":cip"), q.after->ip.bytes().data(), 16,
                        SQLITE_TRANSIENT);
      if (int k = idx(":ck"); k != 0) {
        if (IsRealKey(q.sort)) {
          sqlite3_bind_double(st, k, q.after->real);
        } else {
          sqlite3_bind_int64(st, k, int64_t(q.after->count));
        }
      }
    }
  };
  const std::string key = SortKeyName(q.sort);
  const char* dir = q.ascending ? " ASC" : " DESC";
  std::string order = " ORDER BY " + key + dir;
  if (q.sort != SortKey::kIp) order += ", ip ASC";
  auto limit = [](uint64_t limit, uint64_t offset) -> std::string {
    if (limit == 0 && offset == 0) return "";
    return " LIMIT " + std::to_string(limit == 0 ? -1 : int64_t(limit)) +
           " OFFSET " + std::to_string(offset);
  };
  const std::string select = "SELECT " + std::string(columns);
  std::string sql;
  if (!q.after) {
    sql = select + " FROM sources" + where + order + limit(q.limit, q.offset);
  } else if (q.sort == SortKey::kIp) {
    std::string w = where;
    add(&w, q.ascending ? "ip > :cip" : "ip < :cip");
    sql = select + " FROM sources" + w + order + limit(q.limit, q.offset);
  } else {
    // Both halves in one order: the ties first (part_ 0), then the rest.
    std::string ties = where, beyond = where;
    add(&ties, key + " = :ck AND ip > :cip");
    add(&beyond, key + (q.ascending ? " > :ck" : " < :ck"));
    std::string each =
        q.limit == 0 ? "" : " LIMIT " + std::to_string(q.limit + q.offset);
    sql = "SELECT * FROM (" + select + ", 0 AS part_ FROM sources" + ties +
          " ORDER BY ip ASC" + each + ") UNION ALL SELECT * FROM (" + select +
          ", 1 AS part_ FROM sources" + beyond + order + each +
          ") ORDER BY part_ ASC, " + key + dir + ", ip ASC" +
          limit(q.limit, q.offset);
  }
  return {sql, where, bind};
}

base::Result<uint64_t> SqliteUsedBytes(sqlite3* db) {
  uint64_t v[3];
  const char* pragmas[] = {"PRAGMA page_count", "PRAGMA freelist_count",
                           "PRAGMA page_size"};
  for (int i = 0; i < 3; ++i) {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db, pragmas[i], -1, &st, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) v[i] = uint64_t(sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
      return base::Status::Error(std::string("sqlite: ") + sqlite3_errmsg(db));
    }
  }
  return (v[0] - std::min(v[0], v[1])) * v[2];
}

base::Result<Totals> SqliteReadTotals(sqlite3* db) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db,
                              "SELECT sources, connections, messages, "
                              "recipients, bytes, seconds_held FROM totals "
                              "WHERE id = 1",
                              -1, &st, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  Totals t;
  if (rc == SQLITE_ROW) {
    t.sources = sqlite3_column_int64(st, 0);
    t.connections = sqlite3_column_int64(st, 1);
    t.messages = sqlite3_column_int64(st, 2);
    t.recipients = sqlite3_column_int64(st, 3);
    t.bytes = sqlite3_column_int64(st, 4);
    t.seconds_held = sqlite3_column_double(st, 5);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) {
    return base::Status::Error(std::string("sqlite: ") + sqlite3_errmsg(db));
  }
  return t;
}

}  // namespace ledger
