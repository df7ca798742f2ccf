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
inline constexpr int kPostgresSchemaVersion = 5;

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
  // The fleet's change stream, for the reputation followers. cursor is the
  // snapshot (pg_snapshot text) an earlier call returned; empty: start now.
  // Visits every record whose latest write committed after that snapshot
  // was taken and before this call's was, and returns this call's snapshot:
  // the next cursor. Each change is seen once and none is missed, however
  // the sinks' commits interleave: a row carries the id of the transaction
  // that wrote it (change_xid), and "committed between two snapshots" is
  // decided by the snapshots themselves, not by the order in which
  // transactions started (a sequence or a timestamp taken during a batch
  // can commit after a later one and be skipped by a cursor). A record
  // written again is visited again, once per call that finds it changed.
  // Runs on a connection of its own.
  virtual base::Result<std::string> Changes(const std::string& cursor,
                                            const Visitor& each) = 0;
  // The sequence number the next fresh batch will carry; 0 while the
  // database has not answered yet (the store was opened unreachable) and
  // no ResumeBatch told it.
  virtual uint64_t next_sequence() const = 0;
  // Connects now if not connected yet (within the reconnect backoff).
  virtual base::Status Ready() = 0;
  // Opened unreachable, with a spilled batch of sequence seq from an earlier
  // run pending: the next Apply carries that batch, which counts only if
  // the database does not hold seq yet. No effect once connected (the
  // caller compares next_sequence() itself then).
  virtual void ResumeBatch(uint64_t seq) = 0;
};

// Connects (both connections), migrates the schema to
// kPostgresSchemaVersion under an advisory lock (several sinks may start at
// once) and reads this sink's last sequence. Fails, naming
// ledger.postgresql_url, on a bad URL, refused login, an unknown database,
// a TLS failure or a newer schema. A server that does not answer (down,
// not listening, no route) is not a failure: the store opens unconnected,
// logs event=ledger_unavailable with the reason, and connects at the first
// Apply/Ready the reconnect backoff allows; until then reads fail.
base::Result<std::unique_ptr<PostgresStore>> OpenPostgresStore(
    const PostgresOptions& options);

// Brings an empty database to schema version `version` (< current) exactly
// as that older build would have: for the migration tests.
base::Status CreatePostgresSchemaForTest(const std::string& url, int version);

}  // namespace ledger
