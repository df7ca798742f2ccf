#include "ledger/export.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

namespace ledger {
namespace {

struct FormatInfo {
  Format format;
  const char* name;
  const char* content_type;
};
constexpr FormatInfo kFormats[] = {
    {Format::kPlain, "plain", "text/plain; charset=utf-8"},
    {Format::kCidr, "cidr", "text/plain; charset=utf-8"},
    {Format::kCsv, "csv", "text/csv; charset=utf-8"},
    {Format::kJsonl, "jsonl", "application/jsonl"},
    {Format::kRbldnsd, "rbldnsd", "text/plain; charset=utf-8"},
    {Format::kRbldnsdIp4set, "rbldnsd-ip4set", "text/plain; charset=utf-8"},
    {Format::kRbldnsdIp6trie, "rbldnsd-ip6trie", "text/plain; charset=utf-8"},
    {Format::kNftables, "nftables", "text/plain; charset=utf-8"},
    {Format::kPostfix, "postfix", "text/plain; charset=utf-8"},
    {Format::kSpamd, "spamd", "text/plain; charset=utf-8"},
};

// A network in the 128-bit (IPv4-mapped) form.
struct Net {
  std::array<uint8_t, 16> addr{};
  int bits = 128;
  bool v4() const { return base::IpAddress::FromV6(addr).is_v4(); }
  auto operator<=>(const Net&) const = default;
};

Net Widen(const base::IpAddress& ip, int bits) {
  Net n{ip.bytes(), bits};
  for (int i = 0; i < 16; ++i) {
    int keep = bits - i * 8;
    if (keep >= 8) continue;
    n.addr[i] &= keep <= 0 ? 0 : uint8_t(0xff << (8 - keep));
  }
  return n;
}

// "192.0.2.1", "10.0.0.0/24", "2001:db8::/64"; host routes keep their
// prefix when explicit.
std::string NetString(const Net& n, bool explicit_host) {
  std::string s = base::IpAddress::FromV6(n.addr).ToString();
  bool v4 = n.v4();
  int len = v4 ? n.bits - 96 : n.bits;
  if (n.bits == 128 && !explicit_host) return s;
  return s + "/" + std::to_string(len);
}

struct Entry {
  Net net;
  uint64_t sources = 0;
  uint64_t connections = 0;
  uint64_t messages = 0;
  double last_seen = 0;
};

bool IsExempt(const ExportOptions& o, const base::IpAddress& ip) {
  for (const auto& c : o.exempt) {
    if (c.Contains(ip)) return true;
  }
  return false;
}

// Whether network n and an exempt network share an address.
bool TouchesExempt(const ExportOptions& o, const Net& n) {
  for (const auto& c : o.exempt) {
    int bits = CidrBits128(c);
    Net e = Widen(c.network(), bits);
    int shorter = std::min(bits, n.bits);
    if (Widen(base::IpAddress::FromV6(e.addr), shorter) ==
        Widen(base::IpAddress::FromV6(n.addr), shorter)) {
      return true;
    }
  }
  return false;
}

std::vector<Entry> Entries(const std::vector<SourceRecord>& records,
                           const ExportOptions& o) {
  std::map<Net, Entry> by_net;
  for (const auto& r : records) {
    if (IsExempt(o, r.ip)) continue;
    Net n = Widen(r.ip, r.ip.is_v4() ? 96 + o.v4_prefix : o.v6_prefix);
    if (n.bits < 128 && TouchesExempt(o, n)) n = Widen(r.ip, 128);
    Entry& e = by_net[n];
    e.net = n;
    e.sources++;
    e.connections += r.connections;
    e.messages += r.messages;
    e.last_seen = std::max(e.last_seen, r.last_seen);
  }
  std::vector<Entry> out;
  out.reserve(by_net.size());
  for (auto& [n, e] : by_net) out.push_back(e);
  return out;
}

bool Covers(const Net& a, const Net& b) {
  return a.bits <= b.bits &&
         Widen(base::IpAddress::FromV6(b.addr), a.bits) == a;
}

// The smallest set of networks covering exactly the same addresses.
std::vector<Net> Collapse(std::vector<Net> nets) {
  std::sort(nets.begin(), nets.end());
  std::vector<Net> st;
  for (const Net& n : nets) {
    if (!st.empty() && Covers(st.back(), n)) continue;
    st.push_back(n);
    while (st.size() >= 2) {
      Net& a = st[st.size() - 2];
      Net& b = st.back();
      int min_bits = a.v4() ? 97 : 1;  // never merge IPv4 into IPv6 space
      if (a.bits != b.bits || a.bits < min_bits) break;
      Net parent = Widen(base::IpAddress::FromV6(a.addr), a.bits - 1);
      if (parent != Widen(base::IpAddress::FromV6(b.addr), a.bits - 1) ||
          parent.addr != a.addr) {
        break;
      }
      st.pop_back();
      st.back() = parent;
    }
  }
  return st;
}

std::string Reason(const Entry& e) {
  std::string s = "spamsink: " + std::to_string(e.messages) + " messages, " +
                  std::to_string(e.connections) + " connections";
  if (e.sources > 1) s += " from " + std::to_string(e.sources) + " addresses";
  s += ", last " + FormatTime(e.last_seen);
  return s;
}

std::string Header(const ExportOptions& o, const char* comment,
                   size_t entries) {
  return std::string(comment) + " spamsink " + FormatName(o.format) + ", " +
         std::to_string(entries) + " entries, generated " + FormatTime(o.now) +
         "\n";
}

// One CSV cell, safe to open in a spreadsheet: a cell that would start a
// formula (= + - @, tab, CR) is prefixed with an apostrophe (OWASP's advice
// against CSV injection), control bytes become '?', and a cell holding a
// comma or quote is quoted.
std::string CsvField(std::string_view v) {
  std::string s;
  if (!v.empty() &&
      std::string_view("=+-@\t\r").find(v[0]) != std::string_view::npos) {
    s += '\'';
  }
  for (unsigned char c : v) s += c < 0x20 || c == 0x7f ? '?' : char(c);
  if (s.find_first_of(",\"") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string NamesField(const std::vector<peer::NameCount>& names) {
  std::string s;
  for (const auto& n : names) {
    if (!s.empty()) s += ' ';
    s += n.name + "=" + std::to_string(n.count);
  }
  return CsvField(s);
}

std::string Number(double v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

void RbldnsdHeader(std::string* out, const ExportOptions& o) {
  std::string ttl = std::to_string(o.ttl);
  *out += "$SOA " + ttl + " " + o.ns + " " + o.hostmaster + " 0 600 300 " +
          std::to_string(std::max(86400, o.ttl * 4)) + " " + ttl + "\n";
  *out += "$NS " + ttl + " " + o.ns + "\n";
  *out += "$TTL " + ttl + "\n";
}

void RbldnsdEntries(std::string* out, const std::vector<Entry>& entries,
                    bool v4, const ExportOptions& o) {
  for (const auto& e : entries) {
    if (e.net.v4() != v4) continue;
    // Colons would end the A field only before the TXT; '$' would be
    // replaced by the address: the reason text contains neither issue.
    *out += NetString(e.net, true) + " :" + o.a + ":" + Reason(e) + "\n";
  }
}

std::string Nftables(const std::vector<Entry>& entries,
                     const ExportOptions& o) {
  std::string out = Header(o, "#", entries.size());
  const std::string fam_table = "inet " + o.table;
  out += "table " + fam_table + " {\n";
  out +=
      "\tset " + o.set + "_v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t}\n";
  out +=
      "\tset " + o.set + "_v6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t}\n";
  out += "}\n";
  for (bool v4 : {true, false}) {
    std::string set = o.set + (v4 ? "_v4" : "_v6");
    out += "flush set " + fam_table + " " + set + "\n";
    size_t n = 0;
    for (const auto& e : entries) {
      if (e.net.v4() != v4) continue;
      // Chunks keep each statement a reasonable size.
      if (n % 1024 == 0) {
        if (n != 0) out += " }\n";
        out += "add element " + fam_table + " " + set + " { ";
      } else {
        out += ", ";
      }
      out += NetString(e.net, false);
      ++n;
    }
    if (n != 0) out += " }\n";
  }
  return out;
}

base::Result<int> IntParam(const std::string& key, const std::string& v, int lo,
                           int hi) {
  int out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || out < lo ||
      out > hi) {
    return base::Status::Error("bad " + key + ": want an integer from " +
                               std::to_string(lo) + " to " +
                               std::to_string(hi));
  }
  return out;
}

// Words safe to paste into zone data, nft scripts and map files.
bool SafeWord(const std::string& v) {
  if (v.empty() || v.size() > 253) return false;
  for (char c : v) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
          c == '_')) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool ParseFormat(std::string_view name, Format* out) {
  for (const auto& f : kFormats) {
    if (name == f.name) {
      *out = f.format;
      return true;
    }
  }
  return false;
}

const char* FormatName(Format f) {
  for (const auto& i : kFormats) {
    if (i.format == f) return i.name;
  }
  return "?";
}

std::string FormatNames() {
  std::string s;
  for (const auto& f : kFormats) {
    if (!s.empty()) s += ", ";
    s += f.name;
  }
  return s;
}

const char* ContentType(Format f) {
  for (const auto& i : kFormats) {
    if (i.format == f) return i.content_type;
  }
  return "text/plain";
}

const std::vector<std::string>& ExportOptionKeys() {
  static const std::vector<std::string> keys = {
      "format",     "v4_prefix", "v6_prefix", "ttl", "ns",
      "hostmaster", "a",         "table",     "set", "action"};
  return keys;
}

base::Result<ExportOptions> ParseExportOptions(const Params& params) {
  ExportOptions o;
  bool have_format = false;
  for (const auto& [k, v] : params) {
    if (k == "format") {
      if (!ParseFormat(v, &o.format)) {
        return base::Status::Error("bad format '" + v + "': want one of " +
                                   FormatNames());
      }
      have_format = true;
    } else if (k == "v4_prefix" || k == "v6_prefix" || k == "ttl") {
      auto n = k == "v4_prefix"   ? IntParam(k, v, 8, 32)
               : k == "v6_prefix" ? IntParam(k, v, 16, 128)
                                  : IntParam(k, v, 0, 7 * 86400);
      if (!n.ok()) return n.status();
      (k == "v4_prefix"   ? o.v4_prefix
       : k == "v6_prefix" ? o.v6_prefix
                          : o.ttl) = *n;
    } else if (k == "ns" || k == "hostmaster" || k == "table" || k == "set" ||
               k == "action") {
      if (!SafeWord(v)) {
        return base::Status::Error("bad " + k +
                                   ": letters, digits, '.', '-', '_' only");
      }
      (k == "ns"           ? o.ns
       : k == "hostmaster" ? o.hostmaster
       : k == "table"      ? o.table
       : k == "set"        ? o.set
                           : o.action) = v;
    } else if (k == "a") {
      auto ip = base::IpAddress::Parse(v);
      if (!ip.ok() || !ip->is_v4()) {
        return base::Status::Error("bad a: want an IPv4 address");
      }
      o.a = ip->ToString();
    }
  }
  if (!have_format) {
    return base::Status::Error("missing format: want one of " + FormatNames());
  }
  return o;
}

void ExportQueryDefaults(const Params& params, SourceQuery* q) {
  if (params.count("sort") == 0) {
    q->sort = SortKey::kIp;
    auto order = params.find("order");
    q->ascending = order == params.end() || order->second == "asc";
  }
  if (params.count("min_messages") == 0) q->min_messages = 1;
}

base::Result<std::vector<base::Cidr>> ParseExempt(
    const std::vector<std::string>& networks) {
  std::vector<base::Cidr> out;
  for (const auto& n : networks) {
    auto c = base::Cidr::Parse(n);
    if (!c.ok()) {
      return base::Status::Error("tarpit.exempt: \"" + n + "\": " + c.error());
    }
    out.push_back(*c);
  }
  return out;
}

nlohmann::ordered_json SourceToJson(const SourceRecord& r) {
  auto names = [](const std::vector<peer::NameCount>& list) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const auto& n : list)
      a.push_back({{"name", n.name}, {"count", n.count}});
    return a;
  };
  nlohmann::ordered_json reasons = nlohmann::ordered_json::object();
  for (int i = 0; i < kNumCloseReasons; ++i) {
    if (r.close_reasons[i] != 0)
      reasons[CloseReasonKey(i)] = r.close_reasons[i];
  }
  return {
      {"ip", r.ip.ToString()},
      {"first_seen", FormatTime(r.first_seen)},
      {"last_seen", FormatTime(r.last_seen)},
      {"connections", r.connections},
      {"sessions_with_mail", r.sessions_with_mail},
      {"transactions", r.transactions},
      {"messages", r.messages},
      {"recipients", r.recipients},
      {"bytes", r.bytes},
      {"seconds_held", std::round(r.seconds_held * 1000) / 1000},
      {"commands", r.commands},
      {"tls_sessions", r.tls_sessions},
      {"proxied_sessions", r.proxied_sessions},
      {"auth_attempts", r.auth_attempts},
      {"evidence",
       {{"early_talker", r.early_talker},
        {"pipelining", r.pipelining},
        {"bare_lf", r.bare_lf},
        {"bare_cr", r.bare_cr},
        {"unknown_commands", r.unknown_commands},
        {"protocol_errors", r.protocol_errors},
        {"limits_hit", r.limits_hit}}},
      {"tarpit",
       {{"sessions", r.tarpitted_sessions},
        {"delay_seconds", std::round(r.delay_seconds * 1000) / 1000},
        {"replies_stuttered", r.replies_stuttered},
        {"slow_reads", r.slow_reads}}},
      {"close_reasons", reasons},
      {"helo_names", names(r.helo_names)},
      {"mail_from_domains", names(r.mail_from_domains)},
      {"rcpt_domains", names(r.rcpt_domains)},
  };
}

std::string Export(const std::vector<SourceRecord>& records,
                   const ExportOptions& o) {
  std::string out;
  switch (o.format) {
    case Format::kPlain:
      if (o.v4_prefix == 32 && o.v6_prefix == 128) {
        for (const auto& r : records) {
          if (!IsExempt(o, r.ip)) out += r.ip.ToString() + "\n";
        }
        return out;
      }
      // Widened like cidr, spamd and postfix (not collapsed).
      for (const auto& e : Entries(records, o)) {
        out += NetString(e.net, false) + "\n";
      }
      return out;
    case Format::kCidr: {
      std::vector<Net> nets;
      for (const auto& e : Entries(records, o)) nets.push_back(e.net);
      for (const auto& n : Collapse(std::move(nets))) {
        out += NetString(n, true) + "\n";
      }
      return out;
    }
    case Format::kCsv:
      out =
          "ip,first_seen,last_seen,connections,sessions_with_mail,"
          "transactions,messages,recipients,bytes,seconds_held,commands,"
          "tls_sessions,proxied_sessions,auth_attempts,early_talker,"
          "pipelining,bare_lf,bare_cr,unknown_commands,protocol_errors,"
          "limits_hit,helo_names,mail_from_domains,rcpt_domains,"
          "tarpit_sessions,tarpit_delay_seconds,tarpit_replies_stuttered,"
          "tarpit_slow_reads\r\n";
      for (const auto& r : records) {
        if (IsExempt(o, r.ip)) continue;
        const uint64_t counts[] = {r.connections,  r.sessions_with_mail,
                                   r.transactions, r.messages,
                                   r.recipients,   r.bytes};
        out += r.ip.ToString() + "," + FormatTime(r.first_seen) + "," +
               FormatTime(r.last_seen);
        for (uint64_t c : counts) out += "," + std::to_string(c);
        out += "," + Number(r.seconds_held);
        const uint64_t more[] = {
            r.commands,        r.tls_sessions, r.proxied_sessions,
            r.auth_attempts,   r.early_talker, r.pipelining,
            r.bare_lf,         r.bare_cr,      r.unknown_commands,
            r.protocol_errors, r.limits_hit};
        for (uint64_t c : more) out += "," + std::to_string(c);
        out += "," + NamesField(r.helo_names) + "," +
               NamesField(r.mail_from_domains) + "," +
               NamesField(r.rcpt_domains) + "," +
               std::to_string(r.tarpitted_sessions) + "," +
               Number(r.delay_seconds) + "," +
               std::to_string(r.replies_stuttered) + "," +
               std::to_string(r.slow_reads) + "\r\n";
      }
      return out;
    case Format::kJsonl:
      for (const auto& r : records) {
        if (IsExempt(o, r.ip)) continue;
        out += SourceToJson(r).dump(-1, ' ', false,
                                    nlohmann::json::error_handler_t::replace);
        out += '\n';
      }
      return out;
    case Format::kRbldnsd: {
      auto entries = Entries(records, o);
      out = Header(o, "#", entries.size());
      RbldnsdHeader(&out, o);
      out += "$DATASET ip4set @\n";
      RbldnsdEntries(&out, entries, true, o);
      out += "$DATASET ip6trie @\n";
      RbldnsdEntries(&out, entries, false, o);
      return out;
    }
    case Format::kRbldnsdIp4set:
    case Format::kRbldnsdIp6trie: {
      bool v4 = o.format == Format::kRbldnsdIp4set;
      auto entries = Entries(records, o);
      std::erase_if(entries, [&](const Entry& e) { return e.net.v4() != v4; });
      out = Header(o, "#", entries.size());
      RbldnsdHeader(&out, o);
      RbldnsdEntries(&out, entries, v4, o);
      return out;
    }
    case Format::kNftables:
      return Nftables(Entries(records, o), o);
    case Format::kPostfix: {
      auto entries = Entries(records, o);
      out = Header(o, "#", entries.size());
      for (const auto& e : entries) {
        out += NetString(e.net, true) + " " + o.action + " " + Reason(e) + "\n";
      }
      return out;
    }
    case Format::kSpamd: {
      auto entries = Entries(records, o);
      out = Header(o, "#", entries.size());
      for (const auto& e : entries) out += NetString(e.net, false) + "\n";
      return out;
    }
  }
  return out;
}

}  // namespace ledger
