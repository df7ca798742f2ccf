// PostgreSQL plumbing shared by the store and its tests: connections,
// parameters as text, array literals, the schema and its migrations. Only
// ledger/ includes this (it brings in libpq).
#pragma once

#include <libpq-fe.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "ledger/postgres_store.h"
#include "ledger/source.h"

namespace ledger::pg {

inline constexpr const char* kSetting = "ledger.postgresql_url";

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Res = std::unique_ptr<PGresult, ResultDeleter>;
struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;

// The columns of sources in select order, and their count.
extern const char* const kColumns;
inline constexpr int kNumColumns = 30;

std::string Trim(const char* s);
base::Status ConnError(PGconn* c, const std::string& what);
// bytea text form ("\\x0a0b..") of an address, and back.
std::string Hex(const std::array<uint8_t, 16>& b);
base::IpAddress ParseIp(const char* text);
// A double as text that reads back to the same value.
std::string Num(double v);
// Appends v as one quoted element to an array literal that starts "{".
void AddElement(std::string* array, const std::string& v);

// Per-column array literals, bound as $n::type[] and read with unnest.
struct Columns {
  std::vector<std::string> arrays;
  explicit Columns(int n) : arrays(n, "{") {}
  void Finish() {
    for (auto& a : arrays) a += '}';
  }
  std::vector<const char*> Params() const {
    std::vector<const char*> p;
    for (const auto& a : arrays) p.push_back(a.c_str());
    return p;
  }
};
// Adds r's columns (kColumns order) to c.
void AddRecord(Columns* c, const SourceRecord& r);
SourceRecord Decode(PGresult* res, int row);
// UPDATE sources from one unnest of kNumColumns arrays.
const std::string& UpdateSql();

base::Result<Conn> Connect(const PostgresOptions& o);
// Runs sql with text parameters; an error unless COMMAND_OK / TUPLES_OK.
base::Result<Res> Run(PGconn* c, const std::string& sql,
                      const std::vector<const char*>& params = {});
base::Status Exec(PGconn* c, const std::string& sql);
// Migrates c's database to version target; refuses a newer one.
base::Status Migrate(PGconn* c, int target);

}  // namespace ledger::pg
