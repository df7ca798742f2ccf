// The fleet Store: one PostgreSQL database shared by many sinks. Each sink's
// writer commits a batch in one transaction per writer connection (the
// batch's addresses partitioned among them, PostgresOptions::
// writer_connections), each: the batch's (sink_id,
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
// Reads use a connection of their own, so API queries never wait for a
// commit. Each reconnects on the next call after a failure.
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
  // Writer connections (ledger.writer_connections): a batch's records are
  // partitioned by address (WriterPartition), each part committed by its
  // own connection in its own transaction, side by side. Each part keeps
  // its own exactly-once mark (sink_batches (sink_id, part)); the batch
  // succeeds when every part has committed, and a retry commits only the
  // parts that had not.
  int writer_connections = 1;
  // Test hook: called with the writer connection's part and socket after
  // COMMIT was sent and before its reply is read (to cut it there). Runs
  // on the part's thread.
  std::function<void(int part, int socket)> after_commit_sent;
  // Test hook: called in a part's transaction once its existing rows are
  // locked, before the new ones are inserted (on the part's thread).
  std::function<void(int part, int socket)> after_rows_locked;
};

// The newest schema version this build knows (table spamsink_schema).
inline constexpr int kPostgresSchemaVersion = 6;

// The writer connection (0 .. parts-1) that commits ip's records: a stable
// hash of the address, so each address has exactly one writer.
int WriterPartition(const base::IpAddress& ip, int parts);

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
  // A spilled batch of sequence seq from an earlier run is pending. Returns
  // true when the database holds it in full (every writer part committed
  // it): skip it. Else the next Apply carries it as seq, and each part
  // commits it only if its mark does not hold seq yet (a stop between the
  // parts' commits leaves some holding it). Opened unreachable: false, and
  // the parts decide at the first commit.
  virtual bool ResumeBatch(uint64_t seq) = 0;
};

// Connects (the writers and the reader), migrates the schema to
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
