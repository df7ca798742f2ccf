// The SMTP listener: one io_context and thread per core, each with its own
// SO_REUSEPORT acceptors; per connection, an executor that carries out the
// commands of a pure conn::Connection machine. This is the only place (with
// app/) that does I/O.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/ip.h"
#include "base/status.h"
#include "net/options.h"
#include "peer/summary.h"
#include "smtp/options.h"
#include "smtp/server_session.h"
#include "tarpit/policy.h"

namespace asio::ssl {
class context;
}

namespace net {

// Receives one record per ended session. Called from I/O threads
// concurrently; must not block.
class SessionSink {
 public:
  virtual ~SessionSink() = default;
  virtual void Record(const peer::SessionSummary& record) = 0;
};

struct ServerParams {
  net::Options server;           // [server]
  smtp::Options smtp;            // [smtp]: the timeouts
  tarpit::Options tarpit;        // [tarpit]
  bool log_sessions = true;      // log.sessions: one line per session
  smtp::SessionOptions session;  // persona, limits
  std::shared_ptr<asio::ssl::context> tls;  // null: no STARTTLS
  SessionSink* sink = nullptr;              // may be null
  // ledger.ipv6_prefix: IPv6 clients are one client per network of this
  // many bits for max_connections_per_ip and the reputation (128: per
  // address). Fixed for the server's life (a reload keeps it).
  int ipv6_prefix = 128;
  const base::Clock* clock = &base::SystemClock::Get();
  // Tests: stands in for the io_uring probe ("" if usable, else why not).
  std::function<std::string()> uring_probe;
  // Tests: stands in for the resident bytes read from /proc/self/statm
  // (server.memory_limit).
  std::function<int64_t()> rss;
};

class Server {
 public:
  explicit Server(ServerParams params);
  ~Server();

  // Opens every listener. The error names the address and the likely fix
  // (permission, address in use). REQUIRES: called once, before Run().
  base::Status Bind();
  // "127.0.0.1:2525" etc., with the ports actually bound.
  std::vector<std::string> LocalAddresses() const;

  // Tells the tarpit what is already known of a client (from the ledger),
  // so reputation survives restarts. REQUIRES: before Run().
  // False when the reputation's budget is full (stop seeding).
  bool SeedHistory(const base::IpAddress& ip, const peer::History& h);

  // Sets where ended sessions are reported. REQUIRES: before Run().
  void SetSink(SessionSink* sink);

  // Applies what can change while sessions run (SIGHUP): params.smtp's
  // timeouts, params.server's connection caps, params.tarpit, params.session
  // (persona texts, limits) and params.log_sessions. Listeners, threads,
  // PROXY networks and TLS stay as they were bound. Thread-safe: each worker
  // switches to the new snapshot on its own thread; a running session reads
  // the new values at its next event, while its SMTP engine keeps the
  // persona it greeted with (every snapshot lives as long as the server).
  void Reload(const ServerParams& params);

  // Serves until Stop(); returns when every session has ended.
  void Run();
  // Thread-safe, idempotent: stops accepting, answers 421 to open sessions,
  // and lets Run() return once they are closed.
  void Stop();

  int64_t open_connections() const;
  // "io_uring" or "asio": the executor chosen (server.executor), and why.
  std::string executor() const;
  std::string executor_reason() const;

 private:
  friend struct Session;    // session.cc: one connection
  friend struct USession;   // uring.cc: one connection
  friend struct UringLoop;  // uring.cc: one worker's ring
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace net
