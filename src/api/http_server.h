// The API on its own port: cpp-httplib carries requests to api::Api. The
// only file that includes httplib.h.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/handlers.h"
#include "api/options.h"
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
  HttpServer(const Options& config, ledger::Ledger* ledger,
             std::vector<base::Cidr> exempt = {});
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving on a thread of its own. Refuses a non-loopback
  // address without a token, and a bad (see base::Endpoint) or busy
  // address; errors name api.listen or api.token.
  base::Status Start();
  // Stops accepting and waits for the serving thread. Idempotent.
  void Stop();
  // A reload's new tarpit.exempt for the exports. Thread-safe.
  void SetExempt(std::vector<base::Cidr> exempt) {
    api_.SetExempt(std::move(exempt));
  }
  // The trap attribution for the API; before Start(). REQUIRES: outlives
  // this.
  void SetTraps(ledger::TrapLedger* traps) { api_.SetTraps(traps); }
  // The bound port (useful with port 0); 0 before Start().
  int port() const { return port_; }

 private:
  Options config_;
  Api api_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace api
