// The ledger's spill file (ledger/spill.h): what does not fit in memory
// while the store fails, and what is not committed at exit, waits on disk.
#include <map>

#include "base/log.h"
#include "ledger/ledger.h"
#include "ledger/postgres_store.h"

namespace ledger {
namespace {

// A drained chunk is one batch: about this much spill text per commit.
constexpr uint64_t kChunkBytes = 8 << 20;
// Chunks sent per flush at most (the writer's next flush sends more).
constexpr int kChunksPerFlush = 16;

}  // namespace

uint64_t Ledger::StoreSequence() {
  auto* pg = dynamic_cast<PostgresStore*>(store_.get());
  return pg ? pg->next_sequence() : 0;
}

base::Status Ledger::UseSpill(const std::string& path, uint64_t max_bytes) {
  std::lock_guard lock(flush_mu_);
  spill_ = std::make_unique<Spill>(path, max_bytes);
  auto batch = spill_->LoadBatch();
  if (!batch.ok()) return batch.status();
  if (*batch) {
    // Its chunk of the spill file is done reading, whatever its outcome.
    if ((*batch)->end != 0) {
      if (auto s = spill_->Consume((*batch)->end); !s.ok()) return s;
    }
    // The store tells whether it holds the batch in full; if not (or
    // opened before the database answered), it sends the batch under its
    // own sequence, and each writer part that committed it already skips.
    auto* pg = dynamic_cast<PostgresStore*>(store_.get());
    if (pg && (*batch)->seq != 0 && pg->ResumeBatch((*batch)->seq)) {
      // The store holds its sequence: it was committed before we stopped.
      base::LogLine(base::LogLevel::kInfo, "ledger_spill_batch_committed")
          .Kv("seq", (*batch)->seq)
          .Kv("sources", uint64_t((*batch)->records.size()));
      if (auto s = spill_->RemoveBatch(); !s.ok()) return s;
    } else {
      base::LogLine(base::LogLevel::kInfo, "ledger_spill_batch_loaded")
          .Kv("seq", (*batch)->seq)
          .Kv("sources", uint64_t((*batch)->records.size()));
      in_flight_ = std::move((*batch)->records);
      for (const auto& r : in_flight_) {
        in_flight_ips_.insert(r.ip);
        in_flight_bytes_ += r.ApproxBytes();
      }
      in_flight_saved_ = true;
    }
  }
  auto unsent = spill_->Unsent();
  if (!unsent.ok()) return unsent.status();
  spill_unsent_ = *unsent != 0;
  drain_first_ = spill_unsent_;
  if (spill_unsent_) {
    base::LogLine(base::LogLevel::kInfo, "ledger_spill_found")
        .Kv("path", spill_->path())
        .Kv("bytes", *unsent);
  }
  return {};
}

bool Ledger::SpillOverflow(const std::vector<const SourceRecord*>& records) {
  if (!spill_) return false;
  auto s = spill_->Append(records);
  uint64_t before = spilled_.fetch_add(s.ok() ? records.size() : 0);
  if (!s.ok()) {
    base::LogLine(base::LogLevel::kError, "ledger_spill_failed")
        .Kv("error", s.message())
        .Kv("dropped_sources", uint64_t(records.size()));
    return false;
  }
  // The first spill of a run, then about every 100,000 records.
  if (!spill_unsent_ || before / 100000 != (before + records.size()) / 100000) {
    base::LogLine(base::LogLevel::kWarning, "ledger_spilling")
        .Kv("path", spill_->path())
        .Kv("sources", uint64_t(records.size()))
        .Kv("spilled_total", before + records.size())
        .Kv("reason", "ledger.max_pending_bytes reached while the store fails");
  }
  spill_unsent_ = true;
  return true;
}

base::Status Ledger::DrainSpill() {
  // A chunk is saved with the store's next sequence: it must be known
  // (the database reached once) before a chunk can be sent under it.
  if (auto* pg = dynamic_cast<PostgresStore*>(store_.get());
      pg && pg->next_sequence() == 0) {
    if (auto s = pg->Ready(); !s.ok()) {
      drain_first_ = true;
      return s;
    }
  }
  for (int i = 0; i < kChunksPerFlush && in_flight_.empty(); ++i) {
    auto read = spill_->Read(kChunkBytes);
    if (!read.ok()) return read.status();
    SpilledBatch* chunk = &read.value();
    if (chunk->records.empty()) {
      spill_unsent_ = false;
      auto s = spill_->Consume(chunk->end);  // removes the emptied file
      if (s.ok()) {
        base::LogLine(base::LogLevel::kInfo, "ledger_spill_sent")
            .Kv("path", spill_->path());
      }
      return s;
    }
    // One delta per address, as Store::Apply requires.
    std::map<base::IpAddress, SourceRecord> merged;
    for (auto& r : chunk->records) {
      auto [it, fresh] = merged.try_emplace(r.ip, r);
      if (!fresh) MergeRecord(&it->second, r);
    }
    chunk->records.clear();
    for (auto& [ip, r] : merged) chunk->records.push_back(std::move(r));
    chunk->seq = StoreSequence();
    // Saved with its end before the position moves: a stop anywhere from
    // here on finds the chunk in .batch, never twice.
    if (auto s = spill_->SaveBatch(*chunk); !s.ok()) return s;
    if (auto s = spill_->Consume(chunk->end); !s.ok()) return s;
    in_flight_ = std::move(chunk->records);
    for (const auto& r : in_flight_) {
      in_flight_ips_.insert(r.ip);
      in_flight_bytes_ += r.ApproxBytes();
    }
    in_flight_saved_ = true;
    if (auto s = Commit(); !s.ok()) return s;
  }
  return {};
}

base::Status Ledger::SpillAll() {
  if (!in_flight_.empty() && !in_flight_saved_) {
    SpilledBatch b;
    b.seq = StoreSequence();
    b.records = in_flight_;
    if (auto s = spill_->SaveBatch(b); !s.ok()) return s;
    in_flight_saved_ = true;
  }
  if (pending_.empty()) return {};
  std::vector<const SourceRecord*> ptrs;
  for (const auto& [ip, r] : pending_) ptrs.push_back(&r);
  if (auto s = spill_->Append(ptrs); !s.ok()) return s;
  spilled_ += ptrs.size();
  pending_.clear();
  pending_bytes_ = 0;
  return {};
}

}  // namespace ledger
