// What smtpsend measures. Each driver thread owns one Stats and records into
// it without locks; the reporter merges them at the end. Live progress uses
// the separate Progress counters (relaxed atomics, read by the main thread).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "sender/histogram.h"

namespace sender {

// Latency phases, each recorded in nanoseconds.
enum class Phase : int {
  kConnect,    // connect() issued -> established
  kBanner,     // established -> greeting complete
  kEhlo,       // EHLO/HELO written -> reply
  kStartTls,   // STARTTLS written -> TLS established
  kMail,       // MAIL written -> reply
  kRcpt,       // each RCPT written -> reply
  kData,       // DATA written -> 354
  kEndOfData,  // last content byte written -> final reply (DATA or BDAT)
  kSession,    // connect() issued -> closed
  kCount
};
std::string_view PhaseName(Phase p);

// How a message (or a session) ended. Rejections carry the server's verdict;
// failures mean no verdict was obtained.
enum class Outcome : int {
  kAccepted,
  kRejectedTemporary,  // 4xx
  kRejectedPermanent,  // 5xx
  kFailedConnect,
  kFailedTimeout,   // a phase exceeded --phase-timeout
  kFailedProtocol,  // malformed reply, unexpected code or hang-up
  kAborted,         // deliberately abandoned (--abort-in-data)
  kCount
};
std::string_view OutcomeName(Outcome o);
inline bool IsFailure(Outcome o) {
  return o != Outcome::kAccepted && o != Outcome::kAborted;
}

struct Stats {
  std::array<Histogram, int(Phase::kCount)> phase;
  Histogram held;     // per session: ns spent waiting for the server
  Histogram retrans;  // per session: TCP retransmissions (TCP_INFO)

  std::array<uint64_t, int(Outcome::kCount)> messages{};
  // Sessions by how they ended: kAccepted means clean (no failure).
  std::array<uint64_t, int(Outcome::kCount)> sessions{};
  uint64_t recipients_accepted = 0;
  uint64_t recipients_rejected = 0;
  uint64_t content_bytes = 0;  // message bytes (headers + body) written
  uint64_t bytes_written = 0;
  uint64_t bytes_read = 0;
  uint64_t tls_sessions = 0;     // STARTTLS completed
  uint64_t tls_unavailable = 0;  // wanted, but not offered or refused
  uint64_t helo_fallbacks = 0;
  uint64_t early_talkers = 0;
  uint64_t held_sessions = 0;  // sessions that idled for --hold
  // Open loop: arrivals that found every slot (-s) busy and waited for one,
  // and the longest such wait queue.
  uint64_t queued_arrivals = 0;
  uint64_t max_queue_depth = 0;
  uint64_t retrans_total = 0;
  int64_t held_ns_total = 0;

  uint64_t TotalMessages() const;
  uint64_t TotalSessions() const;
  uint64_t FailedMessages() const;  // rejected + failed (not aborted)
  void Merge(const Stats& other);
};

// Live counters for the progress line. Written by one thread each, read by
// the main thread.
struct Progress {
  std::atomic<uint64_t> messages_done{0};
  std::atomic<uint64_t> messages_bad{0};
  std::atomic<uint64_t> sessions_open{0};
  std::atomic<uint64_t> sessions_holding{0};  // idling in --hold
  void Add(std::atomic<uint64_t>& c, int64_t n) {
    c.fetch_add(uint64_t(n), std::memory_order_relaxed);
  }
};

}  // namespace sender
