// The HTTP API as a pure function: Request in, Response out. No sockets here
// (http_server.h adapts cpp-httplib), so every endpoint is tested with
// strings.
//
//   GET /healthz                  health (never needs the token): 200, or
//                                 503 with "reasons" when the ledger's
//                                 store fails or it dropped sessions, or
//                                 accepting is paused (descriptors)
//   GET /metrics                  Prometheus text, spamsink_*
//   GET /api/v1/sources           filtered, sorted, paged list
//   GET /api/v1/sources/{ip}      one source
//   GET /api/v1/stats             totals and recent rates
//   GET /api/v1/export?format=F   a blocklist file (see ledger/export.h)
//   GET /api/v1/captures[/{id}], /api/v1/captures.mbox
//                                 sampled messages (captures.cc)
//   GET /, /sources, ...          the console (dashboard.h); POST /login
//                                 and /logout with a CSRF token
//
// Errors are JSON {"error": "..."} with 400 (bad parameter), 401 (token
// missing or wrong), 403 (Host not loopback while no token is set: a page
// reached through DNS rebinding), 404 (unknown path or IP), 405 (not GET
// or HEAD; HEAD answers as GET without the body), 503 (ledger off or
// store failing).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "api/dashboard_auth.h"
#include "base/clock.h"
#include "capture/store.h"
#include "ledger/ledger.h"
#include "ledger/query.h"
#include "ledger/trap_ledger.h"

namespace api {

struct Request {
  std::string method = "GET";
  std::string path;           // decoded, without the query string
  ledger::Params params;      // decoded query parameters
  std::string authorization;  // the Authorization header, if any
  std::string host;           // the Host header, if any
  std::string cookie;         // the Cookie header, if any
  std::string content_type;   // the Content-Type header, if any
  std::string body;           // the request body (a POSTed form)
};

// True when a Host header names this machine's loopback: "localhost" or a
// name under ".localhost" (RFC 6761), or a loopback address (127.0.0.0/8,
// ::1 in brackets), each with an optional port. An empty Host (HTTP/1.0
// clients, never a browser) counts as loopback.
bool IsLoopbackHost(std::string_view host);

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is written by calling it after the headers were sent
  // (HTTP chunked): large exports never sit in memory. An error after the
  // first byte can only end the response early.
  std::function<base::Status(const ledger::Sink&)> stream;
};

struct ApiOptions {
  std::string token;  // empty: no authentication
  // The server's CPU time so far (user + system seconds); injected so that
  // /api/v1/cost is tested with known figures. Null: getrusage(2).
  double (*cpu_seconds)() = nullptr;
  uint64_t default_page = 100;
  uint64_t max_page = 1000;
  // /sources offsets above this are 400: an offset reads and drops every
  // record before it; deeper pages come from the cursor (after=next).
  uint64_t max_offset = 100000;
  // Never exported (tarpit.exempt).
  std::vector<base::Cidr> exempt;
  // Unix seconds the server started (spamsink_start_time_seconds); 0: when
  // the Api is made.
  double start_time = 0;
  // What the console's Server page lists (version, persona, listeners; the
  // key "config" holds the effective settings with secrets redacted).
  std::vector<std::pair<std::string, std::string>> server_info;
};

// server.memory_limit and the budgets derived from it (app/memory_budget.h),
// for /healthz "memory" and /metrics.
struct MemoryInfo {
  int64_t limit = 0;
  std::string source;  // config, cgroup, meminfo, off, unknown
  int64_t reputation_bytes = 0;
  int64_t ledger_pending_bytes = 0;
  int64_t seed_bytes = 0;    // budget of the start-up seed
  int64_t seeded_bytes = 0;  // what the seed took
};

class Dashboard;

class Api {
 public:
  // ledger may be null (ledger disabled): its endpoints answer 503.
  // REQUIRES: ledger and clock outlive the Api.
  Api(ledger::Ledger* ledger, ApiOptions options, const base::Clock* clock);
  ~Api();
  // Thread-safe.
  Response Handle(const Request& request) const;
  // Replaces the exempt networks (a reload). Thread-safe.
  void SetExempt(std::vector<base::Cidr> exempt);
  // Replaces the bearer token (a reload of api.token_file); empty: no
  // authentication. Thread-safe.
  void SetToken(std::string token);
  // A reload's running configuration for the console's Server page (see
  // ApiOptions::server_info). Thread-safe.
  using ServerInfo = std::vector<std::pair<std::string, std::string>>;
  void SetServerInfo(ServerInfo info);
  // The trap attribution (/api/v1/harvesters, "harvesters" of a source);
  // null: 503 there. Set before serving. REQUIRES: outlives the Api.
  void SetTraps(ledger::TrapLedger* traps);
  // Sampled capture (/api/v1/captures...); null: 503 there. Set before
  // serving. REQUIRES: outlives the Api.
  void SetCapture(const capture::Store* store) { capture_ = store; }
  // More figures for /metrics from modules above api/ (the trap site's,
  // net::TrapSiteMetrics); called on the serving threads, so thread-safe.
  // Set before serving.
  using MetricsSource = std::function<std::vector<base::Metric>()>;
  void AddMetrics(MetricsSource source) {
    more_metrics_.push_back(std::move(source));
  }
  // Before serving (not thread-safe).
  void SetMemoryInfo(MemoryInfo info) { memory_ = std::move(info); }

 private:
  Response Sources(const Request& r) const;
  Response Source(const std::string& ip) const;
  Response Stats() const;
  Response Cost() const;
  Response Export(const Request& r) const;
  Response ExportHarvesters(const Request& r,
                            const ledger::ExportOptions& o) const;
  Response Metrics() const;
  Response Health() const;
  Response Harvesters(const Request& r) const;
  Response Captures(const Request& r) const;  // captures.cc
  Response Capture(const std::string& id) const;
  Response CapturesMbox(const Request& r) const;
  // feeds/misp/<file> (feeds.cc).
  Response MispFeed(const std::string& file, const Request& r) const;
  // The console's paths (dashboard.h), its login form and logout
  // (dashboard_console.cc).
  Response Console(const Request& r) const;
  Response LoginForm(int status, const std::string& message) const;
  // A bearer token or a logged-in session cookie (when a token is set).
  bool Authorized(const Request& r) const;
  std::string Token() const;  // options_.token, read under the lock

  ledger::Ledger* ledger_;
  ledger::TrapLedger* traps_ = nullptr;
  const capture::Store* capture_ = nullptr;
  std::vector<MetricsSource> more_metrics_;
  ApiOptions options_;
  MemoryInfo memory_;
  const base::Clock* clock_;
  double start_time_;
  // The ledger's sessions_dropped at the last /healthz: more since then is
  // a failure (one answer per new loss).
  mutable std::atomic<uint64_t> dropped_seen_{0};
  mutable std::mutex exempt_mu_;  // guards options_.exempt and .token
  mutable Sessions sessions_;
  std::unique_ptr<Dashboard> dashboard_;
};

inline constexpr const char* kCapturesPath = "/api/v1/captures";

// A JSON error response.
Response ErrorResponse(int status, const std::string& message);
// 405 with "Allow: GET, HEAD": every endpoint is read-only.
Response MethodNotAllowed();

}  // namespace api
