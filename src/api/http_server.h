// The API on its own port: cpp-httplib carries requests to api::Api. The
// only file that includes httplib.h.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/handlers.h"
#include "api/options.h"
#include "base/clock.h"
#include "base/status.h"
#include "ledger/ledger.h"

namespace httplib {
class Server;
}

namespace api {

class HttpServer {
 public:
  // ledger may be null (ledger disabled); exempt networks are never
  // exported. REQUIRES: ledger outlives this.
  // server_info: the console's Server page (ApiOptions::server_info).
  HttpServer(const Options& config, ledger::Ledger* ledger,
             std::vector<base::Cidr> exempt = {},
             std::vector<std::pair<std::string, std::string>> server_info = {});
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Reads api.token_file (if set), binds and starts serving on a thread of
  // its own. Refuses a non-loopback address without a token, an unreadable
  // or unsafe token file, and a bad (see base::Endpoint) or busy address;
  // errors name api.listen, api.token or api.token_file.
  base::Status Start();
  // Stops accepting and waits for the serving thread. Idempotent.
  void Stop();
  // A reload's new tarpit.exempt for the exports. Thread-safe.
  void SetExempt(std::vector<base::Cidr> exempt) {
    api_.SetExempt(std::move(exempt));
  }
  // A reload's token (api::ResolveToken); empty: no authentication.
  // Thread-safe.
  void SetToken(std::string token) { api_.SetToken(std::move(token)); }
  // A reload's running configuration for the console's Server page.
  // Thread-safe.
  void SetServerInfo(std::vector<std::pair<std::string, std::string>> info) {
    api_.SetServerInfo(std::move(info));
  }
  // The trap attribution for the API; before Start(). REQUIRES: outlives
  // this.
  void SetTraps(ledger::TrapLedger* traps) { api_.SetTraps(traps); }
  void SetCapture(const capture::Store* store) { api_.SetCapture(store); }
  // More /metrics figures (Api::AddMetrics); before Start().
  void AddMetrics(Api::MetricsSource source) {
    api_.AddMetrics(std::move(source));
  }
  void SetMemoryInfo(MemoryInfo info) { api_.SetMemoryInfo(std::move(info)); }
  // The bound port (useful with port 0); 0 before Start().
  int port() const { return port_; }

  // What the watchdog does every 250 ms with the steady clock's now: shuts
  // down the connections that owe a request header past their deadline
  // (config.header_timeout); returns how many. Tests call it with a later
  // now instead of waiting.
  int CutOverdue(base::SteadyTime now);
  // Connections in the workers' hands (not the queued ones).
  int connections();

  // Admission and header deadlines (http_server.cc only).
  class Guard;

 private:
  Options config_;
  Api api_;
  std::unique_ptr<Guard> guard_;
  std::unique_ptr<httplib::Server> server_;  // an httplib::SSLServer with TLS
  std::thread thread_;
  std::thread watchdog_;
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool watch_stop_ = false;
  int port_ = 0;
};

}  // namespace api
