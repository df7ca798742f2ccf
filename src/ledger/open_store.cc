#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "ledger/ledger.h"
#include "ledger/postgres_store.h"
#include "ledger/sqlite_store.h"

namespace ledger {
namespace {

base::Result<std::string> ReadPassword(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return base::Status::Error("ledger.postgresql_password_file: cannot read " +
                               path);
  }
  std::string line;
  std::getline(in, line);  // the first line, without its newline
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace

std::string SinkId(const Options& config) {
  if (!config.sink_id.empty()) return config.sink_id;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

base::Result<PostgresOptions> ConfiguredPostgresOptions(const Options& config) {
  if (config.postgresql_url.empty()) {
    return base::Status::Error(
        "ledger.postgresql_url: required when ledger.store = \"postgresql\"");
  }
  PostgresOptions o;
  o.url = config.postgresql_url;
  o.sink_id = SinkId(config);
  o.writer_connections = config.writer_connections;
  if (!config.postgresql_password_file.empty()) {
    auto pw = ReadPassword(config.postgresql_password_file);
    if (!pw.ok()) return pw.status();
    o.password = *pw;
  }
  return o;
}

base::Result<std::unique_ptr<Store>> OpenConfiguredStore(
    const Options& config) {
  if (config.store == "sqlite" || config.store.empty()) {
    SqliteOptions o;
    o.max_sources = uint64_t(std::max<int64_t>(0, config.max_sources));
    o.max_db_bytes = uint64_t(std::max<int64_t>(0, config.max_db_bytes));
    return OpenSqliteStore(config.db_path, o);
  }
  if (config.store != "postgresql") {
    return base::Status::Error("ledger.store: unknown store \"" + config.store +
                               "\" (sqlite or postgresql)");
  }
  auto o = ConfiguredPostgresOptions(config);
  if (!o.ok()) return o.status();
  auto s = OpenPostgresStore(*o);
  if (!s.ok()) return s.status();
  return std::unique_ptr<Store>(std::move(s).value());
}

}  // namespace ledger
