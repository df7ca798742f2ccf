// The SQL a SourceQuery becomes in the SQLite store (private to it).
#pragma once

#include <functional>
#include <string>

#include "base/status.h"
#include "ledger/query.h"
#include "ledger/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ledger {

struct SqliteSelect {
  std::string sql;    // the page: columns, filters, cursor, order, limit
  std::string where;  // the filters alone (" WHERE ..." or empty): the count
  std::function<void(sqlite3_stmt*)> bind;  // binds both
};

// columns: the select list (its first column is ip). With a cursor the page
// is a UNION ALL of the records tied with the cursor's key (by IP, after
// its IP) and those beyond its key, each limited to offset + limit rows, so
// that a page deep in a big table reads about limit rows through the
// indexes, where an OFFSET reads and drops every row before it.
SqliteSelect BuildSqliteSelect(const SourceQuery& q, const char* columns);

// The database's pages in use (its file size less its free pages): what
// the records take, whether or not the file has shrunk.
base::Result<uint64_t> SqliteUsedBytes(sqlite3* db);

// The totals row (the running sums Apply and Expire keep).
base::Result<Totals> SqliteReadTotals(sqlite3* db);

}  // namespace ledger
