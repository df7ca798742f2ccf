// The tarpit's settings: one struct with documented in-class defaults
// (config::Config embeds it as [tarpit]). Plain data, no dependencies beyond
// the standard library and base/ip.h, so the config module can include it
// freely.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ip.h"

namespace tarpit {

// Seconds, sampled uniformly in [min, max]; min == max is a fixed delay.
struct DelayRange {
  double min = 0;
  double max = 0;
  bool operator==(const DelayRange&) const = default;
};

// How far delays may grow with a sender's reputation.
enum class Mode {
  // Stay below the client timeouts of RFC 5321 §4.5.3.2 (times
  // keep_talking_fraction), so the sender keeps its connection open and
  // reaches the final verdict: it pays with time, we record everything.
  kKeepTalking,
  // Go above them (times give_up_factor), so an escalated sender times out
  // and has spent its connection slot for nothing.
  kGiveUp,
  // kKeepTalking until the sender's level reaches give_up_level, then
  // kGiveUp.
  kEscalate,
};

// Final reply to a message, per class of sender.
enum class Verdict {
  kDefault,   // whatever smtp.final_reply says
  kAccept,    // 250
  kTempfail,  // 451: the sender retries and pays again
  kReject,    // 554
};

// Stable names used in the TOML file and logs ("keep_talking", "give_up",
// "escalate"; "default", "accept", "tempfail", "reject").
const char* ModeName(Mode mode);
std::optional<Mode> ParseMode(std::string_view name);
const char* VerdictName(Verdict verdict);
std::optional<Verdict> ParseVerdict(std::string_view name);

struct Options;
// Whether ip is in one of options.exempt's networks (entries that do not
// parse are skipped: config/ rejects them before they get here). Parses the
// few entries at each call: once per connection, never per command.
bool Exempt(const Options& options, const base::IpAddress& ip);

struct Options {
  // --- Behaviour -----------------------------------------------------------
  // Off: every plan is prompt (no delays, stutter, window or slow reader);
  // caps, early-talker answers and verdicts still apply.
  // Off by default so that a trial (smtpsend -n 100) is quick and the
  // benchmarks measure the sink; the appliance config turns it on.
  bool enabled = false;
  Mode mode = Mode::kKeepTalking;
  // kEscalate switches to kGiveUp at this reputation level (0..1).
  double give_up_level = 1.0;
  // Networks (CIDR or single addresses) never tarpitted, shed, dropped by
  // the packet-drop rule nor listed by the exports: monitoring probes, the
  // operator's own test hosts, secondary MXes. Each entry is checked by
  // base::Cidr::Parse when the configuration is read.
  std::vector<std::string> exempt;
  // No single wait (a delay, a stutter interval, the slow reader's pause)
  // is longer than this many seconds; 0 = only the per-stage ceilings of
  // the mode. A cap an operator can set whatever the reputation says.
  double max_delay = 0;

  // Delays before each reply for a sender nothing is known of (level 0).
  // They grow towards the mode's ceiling as the level rises to 1.
  DelayRange greeting = {2, 5};
  DelayRange helo = {1, 2};
  DelayRange mail = {1, 2};
  DelayRange rcpt = {1, 2};
  DelayRange data = {1, 2};       // before 354
  DelayRange data_end = {5, 10};  // after the final ".": the longest wait
  DelayRange reply = {0.5, 1};    // any other reply (NOOP, RSET, QUIT, ...)
  // Ceiling per stage in kKeepTalking: this fraction of the RFC 5321 client
  // timeout (greeting/MAIL/RCPT 300 s, DATA 120 s, data block 180 s, end of
  // data 600 s). Many bots give up sooner than the RFC; lower it for them.
  double keep_talking_fraction = 0.5;
  // Ceiling per stage in kGiveUp: this multiple of the same timeouts.
  double give_up_factor = 1.5;
  // A fully escalated delay is drawn from [ceiling * (1 - jitter), ceiling],
  // so that timing does not fingerprint us.
  double jitter = 0.2;
  // kKeepTalking: after this many seconds of a session, replies are prompt,
  // so the sender reaches its verdict before smtp.session_timeout (keep it
  // below that). Ignored in kGiveUp.
  double hold_budget = 540;

  // Reputation: score = sum of weight * count over what the ledger knows
  // (PeerHistory) and what this session showed. level = log(1 + score) /
  // log(1 + full_level_score), at most 1.
  double weight_connection = 1;      // per prior connection
  double weight_message = 1;         // per message sent
  double weight_early_talk = 10;     // per session that spoke first
  double weight_bare_lf = 5;         // per bare LF
  double weight_protocol_error = 2;  // per protocol error
  double weight_second_held = 0.01;  // per second held before
  double full_level_score = 100;
  // A sender whose evidence score (early talk, bare LF, protocol errors
  // only) reaches this is of class "bot".
  double bot_score = 10;

  // Stutter: replies go out stutter_bytes at a time, one chunk per
  // stutter_interval seconds (OpenBSD spamd: 1 byte per second).
  bool stutter = true;
  int stutter_bytes = 1;
  double stutter_interval = 1;
  // Only during the first stutter_for seconds of a session; 0 = always.
  double stutter_for = 0;

  // Pressure below SMTP, during DATA: the receive window to clamp to
  // (SO_RCVBUF / TCP_WINDOW_CLAMP, bytes; 0 = kernel default) and a slow
  // reader that takes data_read_bytes per interval. The interval is
  // data_read_interval at level 0 and grows to the data-block ceiling.
  int data_window = 2048;
  int data_read_bytes = 1024;
  double data_read_interval = 0.25;

  // Answer a client that speaks before the greeting with 554.
  bool reject_early_talkers = true;

  // Final reply per class of sender.
  Verdict verdict_new = Verdict::kDefault;        // never seen before
  Verdict verdict_returning = Verdict::kDefault;  // seen, no bot evidence
  Verdict verdict_bot = Verdict::kDefault;        // evidence >= bot_score

  // --- Capacity ------------------------------------------------------------
  // Connections held by the tarpit (delayed at all), and connections being
  // stuttered (each costs a wake-up per interval), are capped apart from
  // server.max_connections. Past a cap a new connection is served promptly.
  int max_held = 10000;
  int max_stuttering = 2000;
  // Load = max(open / max connections, memory / memory limit). From
  // degrade_at, no stutter, window or slow reader, and delays shrink
  // linearly to nothing at shed_at; from shed_at every session is answered
  // 421 at once and closed.
  double degrade_at = 0.8;
  double shed_at = 0.95;

  // --- Firewall (nftables) ---------------------------------------------------
  // Percentage (0..100) of incoming packets to the listen ports to drop;
  // 0 = no ruleset. See tarpit/firewall.h.
  double drop_percent = 0;
  // Drop only packets that carry data (spare pure ACKs, so that our own
  // replies are not retransmitted by us); SYN, FIN and RST always pass.
  bool drop_data_only = true;
  // nftables table (family inet) that holds the rule; owned by spamsink.
  // Not the exports' table ("spamsink", sets sources_v4/_v6): applying or
  // removing the rule never touches the exported sets, and vice versa.
  std::string nft_table = "spamsink_drop";
};

}  // namespace tarpit
