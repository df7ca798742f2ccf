#include "tarpit/stutter.h"

#include <algorithm>

namespace tarpit {

Chunk StutterCursor::Next() {
  size_t size = reply_.size() - offset_;
  if (pacing_.chunk_bytes > 0) {
    size = std::min(size, static_cast<size_t>(pacing_.chunk_bytes));
  }
  Chunk c{reply_.substr(offset_, size),
          offset_ == 0 ? pacing_.delay : pacing_.interval};
  offset_ += size;
  return c;
}

std::vector<Chunk> StutterChunks(std::string_view reply, const Pacing& pacing) {
  std::vector<Chunk> out;
  StutterCursor cursor(reply, pacing);
  while (!cursor.Done()) out.push_back(cursor.Next());
  return out;
}

base::Duration SendTime(size_t reply_bytes, const Pacing& pacing) {
  if (reply_bytes == 0) return base::Duration::zero();
  size_t chunks = 1;
  if (pacing.chunk_bytes > 0) {
    size_t c = static_cast<size_t>(pacing.chunk_bytes);
    chunks = (reply_bytes + c - 1) / c;
  }
  return pacing.delay +
         pacing.interval * static_cast<base::Duration::rep>(chunks - 1);
}

}  // namespace tarpit
