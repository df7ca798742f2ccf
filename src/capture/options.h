// Sampled capture's settings ([capture] in the configuration): plain data
// with documented defaults; config/ parses and validates them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace capture {

struct Options {
  // Behaviour.
  int sample_every = 0;  // keep 1 message in this many; 0: off
  std::string dir = "";  // the Maildir (tmp/, new/, cur/ made at start)
  int64_t max_bytes = 1ll << 30;  // total size kept; oldest deleted first
  double retention_days = 30;     // older samples deleted; 0: kept
  // Senders whose every message is kept, beside the 1 in sample_every:
  // networks (CIDR, or a bare address), and evidence names
  // (EvidenceBits). A match is decided at each MAIL from what is known
  // then: the connection's (early_talker, tarpitted) and the session's so
  // far (pipelining; bare_lf/bare_cr and the error counts of its earlier
  // messages and commands).
  std::vector<std::string> senders;
  std::vector<std::string> evidence;
  // Performance.
  int queue_messages = 64;  // samples waiting for the writer; more dropped
  int64_t queue_bytes = 64ll << 20;
};

// Whether capture runs at all.
inline bool Enabled(const Options& o) {
  return o.sample_every > 0 || !o.senders.empty() || !o.evidence.empty();
}

// capture.evidence names and their bits; 0 for an unknown name. "bot" is
// early_talker, pipelining, bare_lf or bare_cr (the DNSBL's 127.0.0.3).
inline constexpr uint32_t kEarlyTalker = 1, kPipelining = 2, kBareLf = 4,
                          kBareCr = 8, kTarpitted = 16, kUnknownCommands = 32,
                          kProtocolErrors = 64;
inline uint32_t EvidenceBits(std::string_view name) {
  if (name == "bot") return kEarlyTalker | kPipelining | kBareLf | kBareCr;
  if (name == "early_talker") return kEarlyTalker;
  if (name == "pipelining") return kPipelining;
  if (name == "bare_lf") return kBareLf;
  if (name == "bare_cr") return kBareCr;
  if (name == "tarpitted") return kTarpitted;
  if (name == "unknown_commands") return kUnknownCommands;
  if (name == "protocol_errors") return kProtocolErrors;
  return 0;
}

}  // namespace capture
