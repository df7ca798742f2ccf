#include "tarpit/firewall.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace tarpit {
namespace {

// Random numbers are drawn mod kDraw: the percentage has a resolution of
// 100 / kDraw.
constexpr int kDraw = 10000;

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += ", ";
    out += p;
  }
  return out;
}

}  // namespace

bool ValidTableName(std::string_view t) {
  if (t.empty() || t.size() > 32) return false;
  auto alpha = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  if (!alpha(t[0])) return false;
  for (char c : t) {
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '-') return false;
  }
  return true;
}

base::Result<Endpoint> ParseEndpoint(std::string_view listen) {
  auto bad = [&](const char* why) {
    return base::Status::Error("listen \"" + std::string(listen) +
                               "\": " + why);
  };
  std::string_view host, port;
  if (!listen.empty() && listen.front() == '[') {
    size_t close = listen.find(']');
    if (close == std::string_view::npos || close + 1 >= listen.size() ||
        listen[close + 1] != ':') {
      return bad("expected [address]:port");
    }
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string_view::npos) return bad("expected host:port");
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] =
      std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return bad("bad port");
  }
  auto address = base::IpAddress::Parse(host);
  if (!address.ok()) return bad("the firewall needs an IP address");
  Endpoint e;
  e.port = static_cast<uint16_t>(value);
  if (address->is_v4() && address->v4() == 0) {
    e.v4_only = true;
  } else if (address->ToString() != "::") {
    e.address = *address;
  }
  return e;
}

base::Result<DropRuleset> MakeDropRuleset(
    const Options& options, const std::vector<std::string>& listen,
    const std::vector<std::string>& exempt) {
  DropRuleset r;
  r.table = options.nft_table;
  r.percent = options.drop_percent;
  r.data_only = options.drop_data_only;
  for (const auto& l : listen) {
    auto e = ParseEndpoint(l);
    if (!e.ok()) return e.status();
    r.endpoints.push_back(*e);
  }
  for (const auto& x : exempt) {
    auto c = base::Cidr::Parse(x);
    if (!c.ok())
      return base::Status::Error("exempt \"" + x + "\": " + c.error());
    r.exempt.push_back(*c);
  }
  return r;
}

base::Result<std::string> AddScript(const DropRuleset& r) {
  if (!ValidTableName(r.table)) {
    return base::Status::Error("nft table name \"" + r.table +
                               "\": use letters, digits, _ and -");
  }
  if (!(r.percent > 0 && r.percent <= 100)) {
    return base::Status::Error("drop percent must be in (0, 100]");
  }
  if (r.endpoints.empty()) return base::Status::Error("no listen endpoints");
  const long threshold = std::lround(r.percent * kDraw / 100.0);

  // Established-flow packets only: no SYN/FIN/RST. With data_only, also a
  // payload: loading a byte past the TCP header (@ih) fails on a pure ACK,
  // which ends the rule without a match.
  std::string match = " tcp flags & (fin | syn | rst) == 0";
  if (r.data_only) match += " @ih,0,8 & 0x0 == 0x0";
  // nft rejects "< kDraw" (out of numgen's range): 100% needs no draw.
  if (threshold < kDraw) {
    match += " numgen random mod " + std::to_string(kDraw) + " < " +
             std::to_string(threshold);
  }
  match += " counter drop\n";

  std::vector<std::string> v4, v6;
  for (const auto& c : r.exempt) {
    (c.network().is_v4() ? v4 : v6).push_back(c.ToString());
  }

  const std::string table = "table inet " + r.table;
  std::string s;
  char percent[32];
  std::snprintf(percent, sizeof percent, "%g", r.percent);
  s += "# spamsink: drop " + std::string(percent) + "% of established-flow " +
       (r.data_only ? "TCP data packets" : "TCP packets") +
       " to the SMTP listen ports.\n";
  s +=
      "# Apply: nft -f FILE    Remove: nft delete table inet " + r.table + "\n";
  s += table + " {}\n";  // so that the delete below cannot fail
  s += "delete " + table + "\n";
  s += table + " {\n";
  s += "\tchain input {\n";
  s += "\t\ttype filter hook input priority filter - 10; policy accept;\n";
  if (!v4.empty()) s += "\t\tip saddr { " + Join(v4) + " } accept\n";
  if (!v6.empty()) s += "\t\tip6 saddr { " + Join(v6) + " } accept\n";
  for (const auto& e : r.endpoints) {
    std::string dst;
    if (e.address) {
      dst = (e.address->is_v4() ? "ip daddr " : "ip6 daddr ") +
            e.address->ToString() + " ";
    } else if (e.v4_only) {
      dst = "meta nfproto ipv4 ";
    }
    s += "\t\t" + dst + "tcp dport " + std::to_string(e.port) + match;
  }
  s += "\t}\n}\n";
  return s;
}

std::string DeleteScript(std::string_view table) {
  std::string t = "table inet " + std::string(table);
  return t + " {}\ndelete " + t + "\n";
}

}  // namespace tarpit
