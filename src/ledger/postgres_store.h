// The fleet Store: one PostgreSQL database shared by many sinks. Each sink's
// writer commits a batch in one transaction: the batch's (sink_id,
// sequence) mark, row locks on the batch's existing addresses (taken in
// address order), the merge done here with MergeRecord (the same semantics
// as every other store), the merged rows COPied into a temporary staging
// table, one INSERT of the new rows (if another sink inserted one of them
// meanwhile, the transaction starts again), one UPDATE of the others, the
// per-sink attribution rows and the fleet totals. Only this file and
// postgres_store.cc include libpq.
//
// Exactly once: a batch that failed, for whatever reason (including a
// COMMIT whose reply was lost), must be retried before any other and with
// the same content (Ledger does so). The retry carries the same sequence
// number; when the database already holds it the retry commits nothing and
// succeeds. A fresh batch whose sequence the database already holds means
// another process writes under the same sink_id: that is an error.
//
// Reads use a second connection, so API queries never wait for a commit.
// Both reconnect on the next call after a failure.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "ledger/store.h"

namespace ledger {

struct PostgresOptions {
  std::string url;       // libpq connection string or postgresql:// URI
  std::string password;  // empty: libpq's own (PGPASSWORD, ~/.pgpass)
  std::string sink_id;   // attribution and batch identity; must be unique
  int connect_timeout_seconds = 5;
  // Test hook: called with the connection's socket after COMMIT was sent
  // and before its reply is read (to cut the connection there).
  std::function<void(int socket)> after_commit_sent;
  // Test hook: called in a batch's transaction once its existing rows are
  // locked, before the new ones are inserted.
  std::function<void()> after_rows_locked;
};

// The newest schema version this build knows (table spamsink_schema).
inline constexpr int kPostgresSchemaVersion = 3;

// One sink's share of one address.
struct SinkCounts {
  std::string sink_id;
  double first_seen = 0;
  double last_seen = 0;
  uint64_t connections = 0;
  uint64_t messages = 0;
  uint64_t bytes = 0;
  bool operator==(const SinkCounts&) const = default;
};

class PostgresStore : public Store {
 public:
  // Per-sink breakdown of ip, by sink_id.
  virtual base::Result<std::vector<SinkCounts>> Sinks(
      const base::IpAddress& ip) = 0;
  // Sums per sink over every address, by sink_id (addresses = sources).
  virtual base::Result<std::vector<SinkCounts>> SinkTotals() = 0;
  // The sequence number the next fresh batch will carry.
  virtual uint64_t next_sequence() const = 0;
};

// Connects (both connections), migrates the schema to
// kPostgresSchemaVersion under an advisory lock (several sinks may start at
// once) and reads this sink's last sequence. Fails, naming
// ledger.postgresql_url, on a bad URL, refused login, or a newer schema.
base::Result<std::unique_ptr<PostgresStore>> OpenPostgresStore(
    const PostgresOptions& options);

// Brings an empty database to schema version `version` (< current) exactly
// as that older build would have: for the migration tests.
base::Status CreatePostgresSchemaForTest(const std::string& url, int version);

}  // namespace ledger
