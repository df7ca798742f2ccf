#include "sender/stats.h"

#include <algorithm>

namespace sender {

std::string_view PhaseName(Phase p) {
  switch (p) {
    case Phase::kConnect:
      return "connect";
    case Phase::kBanner:
      return "banner";
    case Phase::kEhlo:
      return "ehlo";
    case Phase::kStartTls:
      return "starttls";
    case Phase::kMail:
      return "mail";
    case Phase::kRcpt:
      return "rcpt";
    case Phase::kData:
      return "data";
    case Phase::kEndOfData:
      return "end_of_data";
    case Phase::kSession:
      return "session";
    case Phase::kCount:
      break;
  }
  return "?";
}

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kAccepted:
      return "accepted";
    case Outcome::kRejectedTemporary:
      return "temporary";
    case Outcome::kRejectedPermanent:
      return "permanent";
    case Outcome::kFailedConnect:
      return "connect";
    case Outcome::kFailedTimeout:
      return "timeout";
    case Outcome::kFailedProtocol:
      return "protocol";
    case Outcome::kAborted:
      return "aborted";
    case Outcome::kCount:
      break;
  }
  return "?";
}

uint64_t Stats::TotalMessages() const {
  uint64_t n = 0;
  for (auto v : messages) n += v;
  return n;
}

uint64_t Stats::TotalSessions() const {
  uint64_t n = 0;
  for (auto v : sessions) n += v;
  return n;
}

uint64_t Stats::FailedMessages() const {
  uint64_t n = 0;
  for (int i = 0; i < int(Outcome::kCount); ++i)
    if (IsFailure(Outcome(i))) n += messages[i];
  return n;
}

void Stats::Merge(const Stats& o) {
  for (int i = 0; i < int(Phase::kCount); ++i) phase[i].Merge(o.phase[i]);
  held.Merge(o.held);
  retrans.Merge(o.retrans);
  for (int i = 0; i < int(Outcome::kCount); ++i) {
    messages[i] += o.messages[i];
    sessions[i] += o.sessions[i];
  }
  recipients_accepted += o.recipients_accepted;
  recipients_rejected += o.recipients_rejected;
  content_bytes += o.content_bytes;
  bytes_written += o.bytes_written;
  bytes_read += o.bytes_read;
  tls_sessions += o.tls_sessions;
  tls_unavailable += o.tls_unavailable;
  helo_fallbacks += o.helo_fallbacks;
  early_talkers += o.early_talkers;
  held_sessions += o.held_sessions;
  queued_arrivals += o.queued_arrivals;
  max_queue_depth = std::max(max_queue_depth, o.max_queue_depth);
  retrans_total += o.retrans_total;
  held_ns_total += o.held_ns_total;
}

}  // namespace sender
