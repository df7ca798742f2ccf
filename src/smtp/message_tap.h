// Sampled capture's seam in the engine: the session asks a MessageTap at
// each transaction whether to keep its message, and copies the body only
// when the answer is yes. The other messages are still discarded as they
// stream (BodyScanner keeps no bytes), so sampling costs an unsampled
// message one call and no copy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "peer/summary.h"

namespace smtp {

// One sampled message as the session saw it. raw is the DATA stream as it
// arrived (still dot-stuffed, with the final ".\r\n") when dot_stuffed is
// set, else the BDAT chunks concatenated; the receiver undoes the stuffing
// off the SMTP path.
struct CapturedMessage {
  std::string client_ip;
  std::string helo;
  std::string mail_from;
  std::vector<std::string> rcpts;  // at most kMaxCapturedRcpts
  bool tls = false;
  bool dot_stuffed = true;
  uint32_t bare_lf = 0;
  uint32_t bare_cr = 0;
  double wall = 0;  // Unix seconds at the end of the message
  std::string raw;
};
inline constexpr size_t kMaxCapturedRcpts = 100;

// What is known of the sender when a transaction opens.
struct SenderView {
  std::string_view client_ip;  // the real client (after PROXY), as text
  bool early_talker = false;   // the connection's evidence
  bool tarpitted = false;
  const peer::ProtocolFacts* facts = nullptr;  // the session's so far
};

class MessageTap {
 public:
  virtual ~MessageTap() = default;
  // Called at each MAIL of a session not already holding a sample: whether
  // to keep this transaction's message. Thread-safe and cheap (no lock).
  virtual bool Sample(const SenderView& sender) = 0;
  // Takes a whole sampled message. Thread-safe; never blocks on the disk
  // (a full queue drops the message and counts it).
  virtual void Deliver(CapturedMessage&& message) = 0;
};

}  // namespace smtp
