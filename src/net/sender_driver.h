// Runs smtpsend's ClientSession engines over real sockets: one io_context
// per thread, one C++20 coroutine per concurrent session slot, no thread
// per connection. A slot keeps its engine, buffers and socket object across
// connections, so the steady state allocates nothing per message.
//
// Threading: RunSender blocks the calling thread, which only waits, prints
// progress and ends the run (-t, SIGINT); the I/O happens on `threads`
// worker threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/ip.h"
#include "base/status.h"
#include "sender/client_session.h"
#include "sender/message.h"
#include "sender/stats.h"

namespace net {

struct SenderOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 25;
  // Closed loop: this many concurrent sessions. Open loop: the cap on
  // concurrent sessions (arrivals over it wait in a queue, counted).
  int senders = 1;
  double rate = 0;             // open loop: messages/s; 0 = closed loop
  int64_t total_messages = 0;  // 0 = unbounded (then duration must be set)
  double duration = 0;         // seconds; 0 = until total_messages
  int threads = 1;
  sender::SessionSetup setup;
  sender::MessageShape shape;
  int proxy_version = 0;  // 0 = no PROXY header, else 1 or 2
  std::string proxy_clients = "203.0.113.0/24";  // synthetic client addrs
  std::string source_range;  // bind each session to one of these addresses
  uint64_t seed = 0;         // 0 = from the clock
  // STARTTLS: the name sent as SNI and, with tls_verify, checked against
  // the certificate. Empty: host when it is a name (never an address).
  std::string tls_name;
  bool tls_verify = false;  // verify the chain (system CAs or tls_ca_file)
  std::string tls_ca_file;  // PEM file of trusted CAs (implies tls_verify)
};

struct SenderResult {
  sender::Stats stats;
  double elapsed_s = 0;
  double cpu_s = 0;  // user + system CPU of this process during the run
};

// Called about four times a second from the waiting thread.
using ProgressFn =
    std::function<void(const sender::Progress&, double elapsed_s)>;

// Resolves host (an address literal or a name) to the first address.
base::Result<base::IpAddress> ResolveHost(const std::string& host);

// Runs the whole load. Errors are start-up problems (bad address, bad
// range); per-session trouble is counted in the result's Stats instead.
base::Result<SenderResult> RunSender(const SenderOptions& options,
                                     sender::Tracer* tracer,
                                     const ProgressFn& progress);

// Asks a running RunSender to stop starting messages (async-signal-safe).
void RequestSenderStop();

// Raises RLIMIT_NOFILE to its hard limit; returns the new soft limit.
uint64_t RaiseFileLimit();

}  // namespace net
