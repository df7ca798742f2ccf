// A TCP endpoint, "address:port", parsed once where it enters the program
// (config file, command line) so that every user of it (listeners, the HTTP
// API, the firewall rules) agrees on what the text means.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/ip.h"
#include "base/status.h"

namespace base {

struct Endpoint {
  IpAddress address;
  uint16_t port = 0;  // 0: any free port (tests)

  // Accepts "192.0.2.1:25", "[2001:db8::1]:25", "0.0.0.0:25", "[::]:25" and
  // "localhost:25" (127.0.0.1; no other name is resolved, so a listen
  // address never depends on DNS). The port is a number 0..65535 or a
  // service name: smtp, submission, submissions, smtps and http come from a
  // built-in table (the appliance has no /etc/services), others from
  // getservbyname(3) with "tcp". An IPv6 address needs brackets.
  // The error quotes the text, says what is wrong and gives an example; it
  // does not name a setting (the caller prefixes the key or flag).
  static Result<Endpoint> Parse(std::string_view text);

  // "192.0.2.1:25" or "[2001:db8::1]:25": text Parse() reads back.
  std::string ToString() const;

  bool operator==(const Endpoint&) const = default;
};

}  // namespace base
