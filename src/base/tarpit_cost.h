// The TCP retransmissions of held (tarpitted) sessions, read from the
// kernel (TCP_INFO) at their close by net/ and shown by api/ beside the
// tarpit's other costs: /metrics as spamsink_tarpit_retransmissions_total,
// the Overview, /api/v1/cost.
//
// A process-wide atomic rather than a SPAMSINK_COUNTERS entry: it is added
// to once per held session's close (no per-thread shard needed), and this
// header keeps the change out of base/metrics.h, which every module
// includes. Moving it into SPAMSINK_COUNTERS later changes only its readers.
#pragma once

#include <atomic>
#include <cstdint>

namespace base {

inline std::atomic<uint64_t> g_tarpit_retransmissions{0};

}  // namespace base
