// The trap site (traps::Site) on its own HTTP listener, through cpp-httplib:
// public, separate from the API, GET and HEAD only. Each page that showed
// addresses hands its harvest record to a sink (the ledger); the site keeps
// no state per page or per visitor.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/clock.h"
#include "base/status.h"
#include "traps/options.h"
#include "traps/site.h"

namespace httplib {
class Server;
}

namespace api {

// User agents longer than this are cut before they reach a page or a record.
inline constexpr size_t kMaxUserAgent = 256;

class TrapSite {
 public:
  // Called on the serving threads, once per page that showed addresses;
  // must be thread-safe and must not block for long.
  using HarvestSink = std::function<void(const traps::Harvest&)>;

  // REQUIRES: site and clock outlive this.
  TrapSite(const traps::Options& options, const traps::Site* site,
           HarvestSink sink, const base::Clock* clock);
  ~TrapSite();  // Stop()
  TrapSite(const TrapSite&) = delete;
  TrapSite& operator=(const TrapSite&) = delete;

  // Binds traps.listen and serves on a thread of its own; errors name
  // traps.listen.
  base::Status Start();
  // Stops accepting and waits for the serving thread. Idempotent.
  void Stop();
  int port() const { return port_; }

 private:
  traps::Options options_;
  const traps::Site* site_;
  HarvestSink sink_;
  const base::Clock* clock_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace api
