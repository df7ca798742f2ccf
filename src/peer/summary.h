// What one SMTP session tells the rest of the system when it ends: the facts
// the ledger aggregates per client IP and the reputation merges into a
// history. The protocol part (ProtocolFacts) is kept by smtp::ServerSession;
// the connection machine (conn/) adds addresses, timing, TLS, the tarpit's
// figures and the close reason. Plain data; bounded in size whatever the
// client sends.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/ip.h"

namespace peer {

// Why a session ended. Stable names: they appear in logs, the ledger and the
// API. Append only (the ledger stores counts by index).
enum class CloseReason : uint8_t {
  kQuit,             // client sent QUIT
  kClientClosed,     // EOF or reset from the client
  kIdleTimeout,      // no input for idle_timeout, or a write made no progress
  kSessionTimeout,   // session_timeout reached
  kTooManyErrors,    // max_errors reached
  kTooManyCommands,  // max_commands reached
  kTooManyJunk,      // max_junk_commands reached
  kCapTotal,         // refused: total connection cap
  kCapPerIp,         // refused: per-IP connection cap
  kShutdown,         // server shutting down
  kTlsFailed,        // TLS handshake failed
  kProxyError,       // bad PROXY header
  kRejected,         // policy 554 greeting or early talker refusal
  kIoError,          // any other socket error
  kMemoryLimit,      // cut to bring the RSS under server.memory_limit
  kCount
};
inline constexpr int kNumCloseReasons = int(CloseReason::kCount);
const char* CloseReasonName(CloseReason r);

// A name and how often it was seen; lists of these are capped (kMaxNames).
struct NameCount {
  std::string name;
  uint32_t count = 0;
  bool operator==(const NameCount&) const = default;
};
inline constexpr size_t kMaxNames = 8;
// HELO names and domains are attacker-controlled: what is stored is capped
// at this length (a real host name is rarely longer) and cleaned.
inline constexpr size_t kMaxNameLength = 100;
// The name as stored: at most kMaxNameLength bytes, lower case, and every
// byte outside the host-name set (letters, digits, "-._:[]<>@" for address
// literals and the null sender) replaced by '?', so control bytes, spaces
// and spreadsheet formulas are never stored.
std::string CleanName(std::string_view name);
// Adds one sighting of name (cleaned) to list, keeping at most kMaxNames
// entries (new names beyond the cap are dropped; the first distinct ones
// win).
void AddName(std::vector<NameCount>* list, std::string_view name);

// What the SMTP dialogue showed (smtp::ServerSession keeps these).
struct ProtocolFacts {
  std::vector<NameCount> helo_names;
  std::vector<NameCount> mail_from_domains;
  std::vector<NameCount> rcpt_domains;
  uint32_t transactions = 0;  // MAIL commands accepted
  uint32_t messages = 0;      // message bodies fully received
  uint32_t recipients = 0;    // RCPTs accepted
  uint64_t bytes = 0;         // message bytes (after dot-unstuffing)
  uint32_t commands = 0;
  uint32_t auth_attempts = 0;
  // Evidence.
  bool pipelined_without_ehlo = false;  // several commands in one packet
                                        // before PIPELINING was offered
  uint32_t bare_lf = 0;
  uint32_t bare_cr = 0;
  uint32_t unknown_commands = 0;
  uint32_t protocol_errors = 0;  // 5xx/503 replies caused by the client
  uint32_t limits_hit = 0;       // line, recipient, size, count, time limits
  // Accepted recipients at the trap domains (smtp::SessionOptions::
  // trap_domains), lower case, each at most kMaxAddressLength bytes; at most
  // kMaxTrapRcpts distinct per session (the rest are only counted in
  // recipients). The ledger verifies their tokens (traps/token.h).
  std::vector<std::string> trap_rcpts;
};
inline constexpr size_t kMaxTrapRcpts = 16;
inline constexpr size_t kMaxAddressLength = 254;

// What the connection showed (the connection machine keeps these).
struct ConnectionFacts {
  base::IpAddress client;  // real client (after PROXY, if any)
  uint16_t client_port = 0;
  bool via_proxy = false;  // address came from a PROXY header
  bool tls = false;
  bool early_talker = false;  // spoke before the greeting
  CloseReason close_reason = CloseReason::kClientClosed;
  double start_wall = 0;  // Unix seconds
  double end_wall = 0;
  double duration_seconds = 0;  // time the sender spent connected to us

  // Tarpit (when the tarpit held the session).
  bool tarpitted = false;
  double delay_seconds = 0;        // waits we imposed before replies
  uint32_t replies_stuttered = 0;  // replies sent a few bytes at a time
  uint32_t slow_reads = 0;         // DATA reads throttled by the slow reader
};

struct SessionSummary : ProtocolFacts, ConnectionFacts {};

}  // namespace peer
