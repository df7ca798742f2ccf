// In-process counters in one registry. Each thread increments its own shard
// (no cache line shared across cores on the hot path); Snapshot() sums them.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace base {

// X(enum name, metric name, help). Names are rendered as spamsink_<name>.
#define SPAMSINK_COUNTERS(X)                                                   \
  X(kConnectionsAccepted, "connections_accepted_total",                        \
    "TCP connections accepted")                                                \
  X(kConnectionsRefusedTotalCap, "connections_refused_total_cap_total",        \
    "connections answered 421 because the total cap was reached")              \
  X(kConnectionsRefusedPerIpCap, "connections_refused_per_ip_cap_total",       \
    "connections answered 421 because the per-IP cap was reached")             \
  X(kAcceptErrors, "accept_errors_total", "accept(2) failures")                \
  X(kAcceptPauses, "accept_pauses_total",                                      \
    "times accepting paused for lack of descriptors")                          \
  X(kSessions, "sessions_total", "SMTP sessions ended")                        \
  X(kMessages, "messages_total", "messages received and answered")             \
  X(kMessagesAccepted, "messages_accepted_total", "messages answered 250")     \
  X(kMessagesTempfailed, "messages_tempfailed_total", "messages answered 451") \
  X(kMessagesRejected, "messages_rejected_total",                              \
    "messages answered 554 or refused for size or line length")                \
  X(kRecipients, "recipients_total", "recipients accepted")                    \
  X(kBytes, "message_bytes_total", "message bytes received (unstuffed)")       \
  X(kCommands, "commands_total", "SMTP commands read")                         \
  X(kUnknownCommands, "unknown_commands_total", "unrecognised commands")       \
  X(kSyntaxErrors, "syntax_errors_total", "501 replies")                       \
  X(kBadSequence, "bad_sequence_total", "503 replies")                         \
  X(kLongLines, "long_lines_total", "command or text lines over the limit")    \
  X(kBareLf, "bare_lf_total", "bare LF bytes seen")                            \
  X(kBareCr, "bare_cr_total", "bare CR bytes seen")                            \
  X(kTooManyRecipients, "too_many_recipients_total", "452 4.5.3 replies")      \
  X(kTooBig, "message_too_big_total", "552 5.3.4 replies")                     \
  X(kAuthAttempts, "auth_attempts_total", "AUTH commands (always refused)")    \
  X(kStartTls, "starttls_total", "successful STARTTLS handshakes")             \
  X(kTlsFailures, "tls_failures_total", "failed TLS handshakes")               \
  X(kEarlyTalkers, "early_talkers_total",                                      \
    "clients that spoke before the greeting")                                  \
  X(kLimitErrors, "limit_errors_total", "sessions closed for too many errors") \
  X(kLimitCommands, "limit_commands_total",                                    \
    "sessions closed for too many commands")                                   \
  X(kLimitSessionTime, "limit_session_time_total",                             \
    "sessions closed at the session time limit")                               \
  X(kIdleTimeouts, "idle_timeouts_total", "sessions closed when idle")         \
  X(kProxyHeaders, "proxy_headers_total", "PROXY headers accepted")            \
  X(kProxyErrors, "proxy_errors_total", "bad or missing PROXY headers")        \
  X(kTarpitSessions, "tarpit_sessions_total", "sessions held by the tarpit")   \
  X(kTarpitShed, "tarpit_shed_total",                                          \
    "sessions answered 421 at once because load passed tarpit.shed_at")        \
  X(kTarpitDelayUs, "tarpit_delay_seconds_total",                              \
    "time senders waited for the tarpit's delays, counted as served "          \
    "(kept in microseconds, rendered in seconds)")                             \
  X(kTarpitExempt, "tarpit_exempt_sessions_total",                             \
    "sessions from tarpit.exempt networks, never tarpitted")                   \
  X(kTarpitStuttered, "tarpit_replies_stuttered_total",                        \
    "replies sent a few bytes at a time")                                      \
  X(kTarpitSlowReads, "tarpit_slow_reads_total",                               \
    "DATA reads throttled by the slow reader")                                 \
  X(kDnsblQueries, "dnsbl_queries_total", "DNSBL queries received")            \
  X(kDnsblTcpQueries, "dnsbl_tcp_queries_total", "DNSBL queries over TCP")     \
  X(kDnsblListed, "dnsbl_listed_total", "DNSBL answers: listed")               \
  X(kDnsblNxDomain, "dnsbl_nxdomain_total", "DNSBL answers: NXDOMAIN")         \
  X(kDnsblRefused, "dnsbl_refused_total",                                      \
    "DNSBL answers: REFUSED (outside the zone)")                               \
  X(kDnsblFormErr, "dnsbl_formerr_total",                                      \
    "DNSBL answers: FORMERR, NOTIMP or BADVERS")                               \
  X(kDnsblDropped, "dnsbl_dropped_total",                                      \
    "DNSBL packets not answered (too short, or a response)")                   \
  X(kDnsblRateLimited, "dnsbl_rate_limited_total",                             \
    "DNSBL UDP answers withheld by response-rate limiting")                    \
  X(kDnsblSlipped, "dnsbl_slipped_total",                                      \
    "rate-limited DNSBL answers sent empty with TC set instead")               \
  X(kDnsblTruncated, "dnsbl_truncated_total",                                  \
    "DNSBL UDP answers too large, sent with TC set")                           \
  X(kDnsblTcpRefused, "dnsbl_tcp_refused_total",                               \
    "DNSBL TCP connections closed at once: max_tcp_clients reached")           \
  X(kPeerCacheEvictions, "peer_cache_evictions_total",                         \
    "addresses the reputation cache forgot to stay within its budget")         \
  X(kTrapRecordsDropped, "trap_records_dropped_total",                         \
    "trap harvests and recipients dropped: the trap ledger's queue was full")  \
  X(kCaptureSampled, "capture_sampled_total",                                  \
    "sampled messages handed to the capture queue")                            \
  X(kCaptureDropped, "capture_dropped_total",                                  \
    "sampled messages dropped: the capture queue was full")                    \
  X(kCaptureWritten, "capture_written_total",                                  \
    "sampled messages written to the capture Maildir")                         \
  X(kCaptureWriteErrors, "capture_write_errors_total",                         \
    "sampled messages the capture writer could not write")                     \
  X(kCaptureEvicted, "capture_evicted_total",                                  \
    "captured messages deleted by capture.max_bytes or retention_days")        \
  X(kMemoryLimitReached, "memory_limit_reached_total",                         \
    "times the resident memory passed server.memory_limit (load shed)")        \
  X(kMemoryShedSessions, "memory_shed_sessions_total",                         \
    "held tarpit sessions cut (421) to get under server.memory_limit")         \
  X(kApiRefusedQueueFull, "api_connections_refused_queue_full_total",          \
    "API connections answered 503 at once: api.max_queued waiting")            \
  X(kApiRefusedPerIp, "api_connections_refused_per_ip_total",                  \
    "API connections answered 503 at once: api.max_connections_per_ip")        \
  X(kApiRefusedDescriptors, "api_connections_refused_descriptors_total",       \
    "API connections closed at once: descriptors short (server.fd_reserve)")   \
  X(kApiHeaderTimeouts, "api_header_timeouts_total",                           \
    "API connections closed at the header deadline (api.header_timeout)")      \
  X(kDnsblLedgerHits, "dnsbl_ledger_hits_total",                               \
    "DNSBL look-ups of a source the index forgot: found in the ledger")        \
  X(kDnsblLedgerMisses, "dnsbl_ledger_misses_total",                           \
    "DNSBL look-ups of a source the index forgot: not in the ledger")          \
  X(kDnsblLedgerLimited, "dnsbl_ledger_limited_total",                         \
    "DNSBL ledger look-ups skipped: over 200 a second or 1024 queued")         \
  X(kDnsblLedgerErrors, "dnsbl_ledger_errors_total",                           \
    "DNSBL ledger look-ups that failed (store error)")                         \
  X(kCaptureMatched, "capture_matched_total",                                  \
    "messages captured because the sender matched capture.senders or "         \
    "capture.evidence")

enum class Counter : int {
#define SPAMSINK_COUNTER_ENUM(e, name, help) e,
  SPAMSINK_COUNTERS(SPAMSINK_COUNTER_ENUM)
#undef SPAMSINK_COUNTER_ENUM
      kCount
};

struct CounterValue {
  std::string_view name;  // without the spamsink_ prefix
  std::string_view help;
  uint64_t value;
};

// Adds n to counter c in this thread's shard.
void Count(Counter c, uint64_t n = 1);
// Sum over all shards, in declaration order.
std::vector<CounterValue> SnapshotCounters();
uint64_t CounterTotal(Counter c);

// Gauges are few and shared: plain atomics.
extern std::atomic<int64_t> g_open_connections;
// Connections the tarpit holds now (conn/ keeps it with its Gauges).
extern std::atomic<int64_t> g_held_connections;
// Accept loops paused now for lack of descriptors (server.fd_reserve):
// net/ keeps it through net::AcceptPause; /healthz fails while it is > 0.
extern std::atomic<int64_t> g_paused_accepts;
// The reputation cache's estimated bytes and its budget (peer/ keeps them).
extern std::atomic<int64_t> g_peer_cache_bytes;
extern std::atomic<int64_t> g_peer_cache_budget_bytes;
// Open API connections (api/ keeps it; each counts its socket and the
// watchdog's duplicate) and the process's descriptor limit (net/ sets it):
// the SMTP accept loops keep server.fd_reserve free counting both, and the
// API refuses a connection only when fewer than 16 descriptors remain.
extern std::atomic<int64_t> g_api_connections;
extern std::atomic<int64_t> g_fd_limit;
// Resident bytes at the last check and server.memory_limit (0: none); net/
// keeps them when a ceiling is set.
extern std::atomic<int64_t> g_memory_rss_bytes;
extern std::atomic<int64_t> g_memory_limit_bytes;

// One metric as /metrics shows it. Every figure of the process (these
// counters, the ledger's) is given as Metrics to the one renderer below.
struct Metric {
  enum class Type { kCounter, kGauge, kHistogram };
  std::string name;  // without the spamsink_ prefix
  std::string help;
  // Label pairs as exposition text, e.g. reason="per_ip_cap"; metrics of
  // one name with different labels follow each other and share one HELP.
  std::string labels;
  Type type = Type::kCounter;
  double value = 0;  // kCounter, kGauge
  // kHistogram: upper bounds, ascending; a count per bound plus one for
  // +Inf (per bucket, not cumulative); the sum and count of observations.
  std::vector<double> bounds;
  std::vector<uint64_t> buckets;
  double sum = 0;
  uint64_t count = 0;
};

// The counters above and the gauges, as Metrics. The refusal counters
// become one family, connections_refused_total{reason=...}, and the delay
// counter is shown in seconds. start_time: Unix seconds at start.
struct ServerGauges {
  int64_t open_connections = 0;
  int64_t held_connections = 0;
  int64_t paused_accepts = 0;
  int64_t peer_cache_bytes = 0;
  int64_t peer_cache_budget_bytes = 0;
  int64_t memory_rss_bytes = 0;
  int64_t memory_limit_bytes = 0;
  double start_time = 0;
  std::string version;
};
std::vector<Metric> ServerMetrics(const std::vector<CounterValue>& counters,
                                  const ServerGauges& gauges);

// Prometheus text exposition format 0.0.4, names prefixed spamsink_ (pure
// rendering; histogram buckets are made cumulative here).
std::string RenderPrometheus(const std::vector<Metric>& metrics);

}  // namespace base
