// What is known of one client IP from its earlier sessions: the part of the
// ledger's per-IP record that the tarpit's reputation reads. The one merge
// of a session into a history lives here, used by the in-memory cache, the
// ledger's source records (which extend History) and the start-up seed.
#pragma once

#include <cstdint>

#include "peer/summary.h"

namespace peer {

struct History {
  uint64_t connections = 0;
  uint64_t messages = 0;
  uint64_t early_talker = 0;     // sessions that spoke before the greeting
  uint64_t bare_lf = 0;          // bare LFs seen
  uint64_t protocol_errors = 0;  // 5xx/503 replies the peer caused
  double seconds_held = 0;       // total connected time
  bool operator==(const History&) const = default;
};

// Adds one ended session to h.
void Merge(History* h, const SessionSummary& s);
// Adds another history (a delta) to h.
void Add(History* h, const History& delta);

}  // namespace peer
