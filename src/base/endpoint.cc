#include "base/endpoint.h"

#include <netdb.h>
#include <netinet/in.h>

#include <charconv>

namespace base {
namespace {

struct Service {
  std::string_view name;
  uint16_t port;
};
// IANA names for the ports a mail sink listens on; looked up before
// getservbyname(3) so that they work without /etc/services.
constexpr Service kServices[] = {
    {"smtp", 25},   {"submission", 587}, {"submissions", 465},
    {"smtps", 465}, {"http", 80},
};

bool IsServiceName(std::string_view s) {
  // RFC 6335 §5.1: letters, digits and hyphens, at most 15, a letter first
  // (we also take any letter as the first character).
  if (s.empty() || s.size() > 15) return false;
  auto alpha = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  };
  if (!alpha(s.front())) return false;
  for (char c : s) {
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '-') return false;
  }
  return true;
}

bool LookUpService(std::string_view name, uint16_t* port) {
  for (const auto& s : kServices) {
    if (s.name == name) {
      *port = s.port;
      return true;
    }
  }
  std::string n(name);
  servent entry;
  servent* found = nullptr;
  char buf[1024];
  if (getservbyname_r(n.c_str(), "tcp", &entry, buf, sizeof buf, &found) != 0 ||
      found == nullptr) {
    return false;
  }
  *port = ntohs(uint16_t(found->s_port));
  return true;
}

}  // namespace

Result<Endpoint> Endpoint::Parse(std::string_view text) {
  const std::string quoted = "\"" + std::string(text) + "\"";
  auto bad = [&](const std::string& why) {
    return Status::Error(quoted + ": " + why);
  };
  std::string_view host, port;
  bool bracketed = !text.empty() && text.front() == '[';
  if (bracketed) {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return bad("missing \"]\" after the IPv6 address; e.g. [::1]:25");
    }
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("missing \":port\" after \"]\"; e.g. [::1]:25");
    }
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return bad("missing \":port\"; e.g. 127.0.0.1:25 or [::1]:25");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return bad("an IPv6 address needs brackets; e.g. [::1]:25");
    }
  }
  if (host.empty()) {
    return bad(
        "missing address before the port; e.g. 0.0.0.0:25 (every "
        "IPv4 address) or 127.0.0.1:25");
  }
  if (port.empty()) return bad("missing port; e.g. 127.0.0.1:25");

  Endpoint e;
  if (port.find_first_not_of("0123456789") == std::string_view::npos) {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (ec != std::errc() || n > 65535) {
      return bad("port " + std::string(port) +
                 " is out of range (0 to 65535); e.g. 127.0.0.1:25");
    }
    e.port = uint16_t(n);
  } else if (!IsServiceName(port) || !LookUpService(port, &e.port)) {
    return bad("port \"" + std::string(port) +
               "\" is neither a number nor a known service name; e.g. "
               "127.0.0.1:25 or 127.0.0.1:smtp");
  }

  if (!bracketed && host == "localhost") {
    e.address = IpAddress::FromV4(0x7f000001);
    return e;
  }
  auto address = IpAddress::Parse(host);
  if (!address.ok()) {
    return bad("\"" + std::string(host) +
               "\" is not an IP address (host names other than localhost "
               "are not resolved); e.g. 192.0.2.1:25 or [2001:db8::1]:25");
  }
  e.address = *address;
  return e;
}

std::string Endpoint::ToString() const {
  std::string a = address.ToString();
  if (!address.is_v4()) a = "[" + a + "]";
  return a + ":" + std::to_string(port);
}

}  // namespace base
