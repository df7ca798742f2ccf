// The ledger's spill: records that could not wait in memory for the store
// (the pending bound passed while the store fails) or could not be
// committed before exit, kept on local disk and sent when the store is back.
//
// Three files beside each other, for path P:
//   P        records, one a line (EncodeRecord), appended; never rewritten.
//   P.pos    the byte offset up to which P has been sent (absent: 0).
//   P.batch  the one batch handed to the store and not known committed:
//            its store sequence number (0: the store has none), the offset
//            of P it ends at (0: it came from memory), and its records.
// A chunk of P is sent by: saving it as P.batch (with its end offset),
// moving P.pos to that offset, committing, removing P.batch. A start finds
// P.batch and asks the store whether its sequence is committed (a fleet
// store keeps the last sequence per sink), so a batch is counted once
// whether the process stopped before or after its COMMIT. Every write is
// fsynced; P.pos and P.batch are replaced atomically (rename).
//
// Not thread-safe: the ledger's flush lock guards it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "ledger/source.h"

namespace ledger {

// One record as one line of text (no newline): tab-separated fields, the
// name lists and close reasons as JSON. Decode(Encode(r)) == r.
std::string EncodeRecord(const SourceRecord& r);
base::Result<SourceRecord> DecodeRecord(std::string_view line);

struct SpilledBatch {
  uint64_t seq = 0;  // the store's sequence number; 0: none
  uint64_t end = 0;  // the offset of P it ends at; 0: from memory
  std::vector<SourceRecord> records;
};

class Spill {
 public:
  // max_bytes bounds P (what is sent stays counted until P is emptied and
  // removed). Nothing is read or created until used.
  Spill(std::string path, uint64_t max_bytes);

  const std::string& path() const { return path_; }
  // Bytes of P not yet sent (0 when P is absent).
  base::Result<uint64_t> Unsent() const;
  // Appends records to P. Refused (nothing written) when P would pass
  // max_bytes; an I/O error may leave a partial last line, which Read
  // skips.
  base::Status Append(const std::vector<const SourceRecord*>& records);
  // Up to max_bytes of P's records from P.pos on (at least one record if
  // any), and the offset they end at.
  base::Result<SpilledBatch> Read(uint64_t max_bytes) const;
  // Moves P.pos to end; at P's end removes P and P.pos.
  base::Status Consume(uint64_t end);

  base::Status SaveBatch(const SpilledBatch& batch);
  base::Result<std::optional<SpilledBatch>> LoadBatch() const;
  base::Status RemoveBatch();

 private:
  base::Result<uint64_t> Pos() const;
  uint64_t Size() const;

  std::string path_;
  uint64_t max_bytes_;
};

}  // namespace ledger
