// Splitting a reply into the timed chunks a Pacing asks for. The network
// layer sends chunk after chunk, waiting `wait` (a timer, never a sleep)
// before each.
#pragma once

#include <string_view>
#include <vector>

#include "base/clock.h"
#include "tarpit/policy.h"

namespace tarpit {

struct Chunk {
  std::string_view bytes;  // a slice of the reply passed in
  base::Duration wait{};   // to wait before sending these bytes
};

// Walks the chunks of `reply` without allocating. The first chunk waits
// pacing.delay, each later one pacing.interval. With chunk_bytes 0 (or not
// smaller than the reply) there is a single chunk. An empty reply has none.
// REQUIRES: `reply` outlives the cursor and its chunks.
class StutterCursor {
 public:
  StutterCursor(std::string_view reply, const Pacing& pacing)
      : reply_(reply), pacing_(pacing) {}
  bool Done() const { return offset_ >= reply_.size(); }
  // REQUIRES: !Done()
  Chunk Next();
  // Bytes not yet returned by Next().
  std::string_view Rest() const { return reply_.substr(offset_); }

 private:
  std::string_view reply_;
  Pacing pacing_;
  size_t offset_ = 0;
};

// All chunks at once (tests, logs, tools; the hot path uses the cursor).
std::vector<Chunk> StutterChunks(std::string_view reply, const Pacing& pacing);

// Time from the decision to the last byte: delay plus the intervals.
base::Duration SendTime(size_t reply_bytes, const Pacing& pacing);

}  // namespace tarpit
