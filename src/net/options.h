// The listener's settings ([server] in the configuration): one struct with
// documented in-class defaults. Plain data; config/ parses and validates it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

// Every listen entry is text that base::Endpoint::Parse accepts (config/
// checks it); users of the field parse it with that, and only that.
#include "base/endpoint.h"

namespace net {

struct Options {
  // Behaviour.
  // Addresses to listen on, "host:port" or "[v6]:port" (base::Endpoint).
  std::vector<std::string> listen = {"127.0.0.1:25", "[::1]:25"};
  // Name used in the banner and replies; empty means the system host name.
  std::string hostname;
  // Drop privileges to this user after binding (when started as root).
  std::string user;
  // Networks allowed to send a PROXY v1/v2 header; connections from them
  // must send one. Empty: PROXY protocol off.
  std::vector<std::string> proxy_trusted;
  // Seconds a trusted peer has to send its PROXY header.
  double proxy_timeout = 5;
  // Performance.
  // How connections are served: "io_uring" (one ring per thread: batched
  // submissions, provided receive buffers), "asio" (epoll readiness), or
  // "auto" (io_uring if the kernel allows it, else asio; the choice and the
  // reason are logged at start-up).
  std::string executor = "auto";
  int threads = 0;  // I/O threads; 0 = one per core
  int backlog = 4096;
  int max_connections = 20000;
  int max_connections_per_ip = 50;
  int fd_reserve = 32;  // descriptors kept free; accept pauses below it
  // Resident memory ceiling in bytes (0: none). Above it the server sheds
  // load: accepting pauses and the oldest held tarpit sessions are cut,
  // until the RSS falls below 90% of it (net/server.cc, CheckMemory).
  // -1: derived by spamsink serve from the cgroup or the machine
  // (app/memory_budget.h); net/ treats anything <= 0 as none.
  int64_t memory_limit = -1;
  // The reputation's byte budget (peer::Cache); 0: derived (limit / 4;
  // peer::Cache::kDefaultBudgetBytes where nothing derives it).
  int64_t reputation_bytes = 0;
  // The reputation filled from the ledger at start, at most (bytes); 0:
  // derived (reputation_bytes / 2).
  int64_t seed_bytes = 0;
  // Once started: capabilities dropped, no_new_privs, and a seccomp
  // allow-list of system calls (app/sandbox.h).
  bool sandbox = true;
};

}  // namespace net
