// The DNSBL's sockets: one UDP socket and one TCP listener on the same
// address, served by one thread of its own (a DNSBL answer costs a few
// microseconds; the SMTP threads never see DNS traffic). Decides nothing:
// each query goes to dnsbl::Responder and its answer, if any, back out.
//
// TCP (RFC 7766): queries framed by a 2-octet length, several per
// connection, answered in order; at most max_tcp_clients connections at
// once (more are closed at once and counted), each closed after
// tcp_idle_timeout seconds without a query.
#pragma once

#include <memory>
#include <string>

#include "base/clock.h"
#include "base/status.h"
#include "dnsbl/options.h"
#include "dnsbl/responder.h"

namespace net {

class DnsServer {
 public:
  // REQUIRES: responder and clock outlive the server.
  DnsServer(const dnsbl::Options& options, dnsbl::Responder* responder,
            const base::Clock* clock = &base::SystemClock::Get());
  ~DnsServer();  // Stop()

  // Binds UDP and TCP on options.listen (port 0: one free port for both)
  // and starts the thread. The error names the address.
  base::Status Start();
  // "127.0.0.1:5353" with the port bound.
  std::string LocalAddress() const;
  // Closes the sockets and joins the thread. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace net
