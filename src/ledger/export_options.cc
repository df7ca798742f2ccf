// Export formats by name, the export options and the query defaults
// exports share, and the API's JSON object for one source.
#include <charconv>
#include <cmath>

#include "ledger/export.h"

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
    {Format::kStix, "stix", "application/stix+json;version=2.1"},
};

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

bool ParseExportList(std::string_view name, ExportList* out) {
  if (name == "sources") {
    *out = ExportList::kSources;
  } else if (name == "harvesters") {
    *out = ExportList::kHarvesters;
  } else {
    return false;
  }
  return true;
}

const std::vector<std::string>& ExportOptionKeys() {
  static const std::vector<std::string> keys = {
      "format",     "list", "v4_prefix", "v6_prefix", "ttl",   "ns",
      "hostmaster", "a",    "table",     "set",       "action"};
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
    } else if (k == "list") {
      if (!ParseExportList(v, &o.list)) {
        return base::Status::Error("bad list '" + v +
                                   "': want sources or harvesters");
      }
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
  nlohmann::ordered_json out = {
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
  // A network's record: the full addresses seen inside it.
  if (!r.addresses.empty()) {
    nlohmann::ordered_json sample = nlohmann::ordered_json::array();
    for (const auto& e : r.addresses) {
      sample.push_back(
          {{"address", e.address.ToString()}, {"sessions", e.sessions}});
    }
    out["addresses"] = {
        {"sample", sample},
        {"distinct", r.DistinctAddresses()},
        {"distinct_estimated", r.addresses.size() >= kMaxSampledAddresses}};
  }
  return out;
}

}  // namespace ledger
