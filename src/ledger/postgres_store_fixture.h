// The fixture the PostgreSQL store tests share: a private cluster per test
// process (ledger/pg_test_util.h) and a fresh database per test. Each test
// file derives its own suite name from PostgresStoreTest (gtest wants one
// fixture class per suite name, and the class is per file).
#ifndef SPAMSINK_LEDGER_POSTGRES_STORE_FIXTURE_H_
#define SPAMSINK_LEDGER_POSTGRES_STORE_FIXTURE_H_

#include <gtest/gtest.h>

#include <string>

#include "ledger/pg_test_util.h"
#include "ledger/postgres_store.h"
#include "ledger/source.h"
#include "ledger/test_util.h"

namespace ledger {
namespace {  // NOLINT(build/namespaces): one copy per test file

using testing::Ip;
using testing::PgCluster;
using testing::Session;

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = PgCluster::Shared();
    if (pg_ == nullptr) GTEST_SKIP() << "no PostgreSQL server installed";
    url_ = pg_->NewDatabase();
  }
  PostgresOptions Opts(const std::string& sink, int parts = 1) {
    PostgresOptions o;
    o.url = url_;
    o.password = PgCluster::kPassword;
    o.sink_id = sink;
    o.writer_connections = parts;
    return o;
  }
  // The single value of a query run on a fresh connection.
  std::string Scalar(const std::string& sql) {
    return PgCluster::Scalar(url_, sql);
  }

  PgCluster* pg_ = nullptr;
  std::string url_;
};

SourceRecord Delta(const std::string& ip, uint64_t messages) {
  SourceRecord r;
  r.ip = Ip(ip);
  r.first_seen = 100;
  r.last_seen = 200;
  r.connections = 1;
  r.messages = messages;
  r.bytes = 10 * messages;
  MergeName(&r.helo_names, "bot", 1);
  return r;
}
}  // namespace
}  // namespace ledger

#endif  // SPAMSINK_LEDGER_POSTGRES_STORE_FIXTURE_H_
