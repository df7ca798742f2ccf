#include "tarpit/firewall.h"

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

base::Status CheckTableName(std::string_view table) {
  if (ValidTableName(table)) return {};
  return base::Status::Error(
      "nft table name \"" + std::string(table) +
      "\": use a letter or _, then letters, digits, _ and -, at most 32 "
      "characters; e.g. spamsink");
}

base::Result<DropRuleset> MakeDropRuleset(
    const Options& options, const std::vector<std::string>& listen,
    const std::vector<std::string>& exempt) {
  DropRuleset r;
  r.table = options.nft_table;
  r.percent = options.drop_percent;
  r.data_only = options.drop_data_only;
  for (const auto& l : listen) {
    auto e = base::Endpoint::Parse(l);
    if (!e.ok()) return base::Status::Error("server.listen: " + e.error());
    if (e->port == 0) {
      return base::Status::Error("server.listen: \"" + l +
                                 "\": the firewall needs a fixed port; "
                                 "e.g. 0.0.0.0:25");
    }
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
  if (auto s = CheckTableName(r.table); !s.ok()) return s;
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
    const std::string a = e.address.ToString();
    if (a == "0.0.0.0") {
      dst = "meta nfproto ipv4 ";
    } else if (a != "::") {
      dst = (e.address.is_v4() ? "ip daddr " : "ip6 daddr ") + a + " ";
    }
    s += "\t\t" + dst + "tcp dport " + std::to_string(e.port) + match;
  }
  s += "\t}\n}\n";
  return s;
}

base::Result<std::string> DeleteScript(std::string_view table) {
  if (auto s = CheckTableName(table); !s.ok()) return s;
  std::string t = "table inet " + std::string(table);
  return t + " {}\ndelete " + t + "\n";
}

}  // namespace tarpit
