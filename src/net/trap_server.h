// The trap site (traps::Site) on its own HTTP listener: public, separate
// from the API, GET and HEAD only, one response per connection. Asio, so a
// harvester held by a slow response costs a coroutine frame, a socket and
// its page (a few KiB, docs/BENCHMARKS.md), never a thread.
//
// Slow responses (traps.page_delay > 0): a tree page's headers go out at
// once and its body trickles out in kTrickleChunks pieces spread over
// page_delay seconds, for at most traps.max_slow_clients connections at
// once and traps.max_slow_per_client per client address; beyond either
// bound the page goes out at once. Each page that showed addresses hands
// its harvest record to a sink (the ledger); nothing is kept per page.
//
// PROXY protocol (v1 and v2, parsed by conn::ParseProxyHeader): a
// connection from traps.trusted_proxies may start with a PROXY header; the
// harvester is then the address it gives (X-Forwarded-For still applies
// when that address is itself a trusted proxy; LOCAL keeps the proxy's).
// A malformed header, or any PROXY header from an address not trusted,
// closes the connection without a response (counted as
// trap_clients_refused_total{bound="proxy_header"}).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/ip.h"
#include "base/metrics.h"
#include "base/status.h"
#include "traps/options.h"
#include "traps/site.h"

namespace net {

// User agents longer than this are cut before they reach a page or a record.
inline constexpr size_t kMaxTrapUserAgent = 256;
// A request line and headers together over this get 414 / 431.
inline constexpr size_t kMaxTrapRequestHead = 8192;
inline constexpr int kTrickleChunks = 32;

// One piece of a trickled body: bytes [offset, offset + size) are written
// `at` seconds after the headers.
struct TrickleStep {
  size_t offset = 0;
  size_t size = 0;
  double at = 0;
};
// The schedule of a body of `bytes` spread over `delay` seconds: at most
// kTrickleChunks steps of equal size (the last takes the rest), the first at
// 0 and the last at delay * (steps - 1) / steps, so the page is complete
// just before `delay`. Pure; empty for an empty body.
std::vector<TrickleStep> TrickleSchedule(size_t bytes, double delay);

// The client's address of a request from `peer` carrying X-Forwarded-For
// `forwarded` (several headers joined by ','): peer itself unless peer is in
// `trusted`; else the rightmost address of the header that is not trusted
// (a proxy chain is walked from the end), the leftmost if all are, and
// peer if an entry is not an address. Pure.
base::IpAddress ForwardedClient(const base::IpAddress& peer,
                                std::string_view forwarded,
                                const std::vector<base::Cidr>& trusted);

// The trap site's figures for /metrics, process-wide (every TrapServer of
// the process adds to them): the gauge trap_slow_clients (connections held
// by a slow page now), the counters trap_pages_served_total (pages that
// showed addresses), trap_pages_slowed_total (those of them trickled) and
// trap_clients_refused_total{bound=...}: max_clients (closed at once),
// max_slow_clients and max_slow_per_client (not held: the page went out at
// once), proxy_header (see above).
std::vector<base::Metric> TrapSiteMetrics();

class TrapServer {
 public:
  // Called on the serving threads, once per page that showed addresses;
  // must be thread-safe and must not block for long.
  using HarvestSink = std::function<void(const traps::Harvest&)>;

  // REQUIRES: site and clock outlive this. The clock stamps pages and
  // harvests; delays run on the steady clock of Asio's timers.
  TrapServer(const traps::Options& options, const traps::Site* site,
             HarvestSink sink, const base::Clock* clock);
  ~TrapServer();  // Stop()
  TrapServer(const TrapServer&) = delete;
  TrapServer& operator=(const TrapServer&) = delete;

  // Binds traps.listen and serves on traps.threads threads; errors name
  // traps.listen (or traps.trusted_proxies).
  base::Status Start();
  // Closes the listener and every connection (held ones too) and joins the
  // threads. Idempotent.
  void Stop();
  int port() const;
  // Connections being trickled to now (for tests and benchmarks).
  int slow_clients() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace net
