#include "ledger/export_stix.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "nlohmann/json.hpp"

namespace ledger {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Evidence flag names of r, for labels and the description.
std::vector<std::string> Flags(const SourceRecord& r) {
  std::vector<std::string> out;
  uint32_t mask = r.EvidenceMask();
  const auto& names = EvidenceNames();
  for (size_t i = 0; i < names.size(); ++i) {
    if (mask & (1u << i)) out.emplace_back(names[i]);
  }
  return out;
}

}  // namespace

std::string StixTime(double unix_seconds) {
  if (!std::isfinite(unix_seconds) || unix_seconds < 0) unix_seconds = 0;
  auto whole = static_cast<time_t>(unix_seconds);
  int ms = static_cast<int>((unix_seconds - double(whole)) * 1000);
  ms = std::clamp(ms, 0, 999);
  struct tm tm;
  gmtime_r(&whole, &tm);
  char buf[80];  // room for any int fields, though years stay 4 digits
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, ms);
  return buf;
}

std::string StixId(std::string_view type, std::string_view key) {
  uint64_t a = 0x6a09e667f3bcc908ull, b = 0xbb67ae8584caa73bull;
  for (unsigned char c : key) {
    a = Mix(a ^ c);
    b = Mix(b + c);
  }
  a = Mix(a ^ key.size());
  b = Mix(b ^ a);
  // Version 4 in the high nibble of octet 6, variant 10 in octet 8.
  a = (a & ~0xf000ull) | 0x4000ull;
  b = (b & ~(0xc000000000000000ull)) | 0x8000000000000000ull;
  char buf[40];
  snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", unsigned(a >> 32),
           unsigned((a >> 16) & 0xffff), unsigned(a & 0xffff),
           unsigned(b >> 48),
           static_cast<unsigned long long>(b & 0xffffffffffffull));
  return std::string(type) + "--" + buf;
}

std::string StixBundleHead(double now) {
  return "{\"type\":\"bundle\",\"id\":\"" +
         StixId("bundle", "spamsink bundle " + StixTime(now)) +
         "\",\"objects\":[";
}

std::string StixBundleTail() { return "]}\n"; }

std::string StixIndicator(const SourceRecord& r, int v6_prefix) {
  const bool v4 = r.ip.is_v4();
  std::string ip = r.ip.ToString();
  if (!v4 && v6_prefix >= 0 && v6_prefix < 128) {
    ip += "/" + std::to_string(v6_prefix);
  }
  const double created = r.first_seen;
  const double modified = std::max(r.last_seen, r.first_seen);
  std::vector<std::string> labels = {"spam-source"};
  for (auto& f : Flags(r)) labels.push_back(f);
  std::string description = "Seen by spamsink: " + std::to_string(r.messages) +
                            " messages in " + std::to_string(r.connections) +
                            " connections, first " + StixTime(r.first_seen) +
                            ", last " + StixTime(r.last_seen);
  if (labels.size() > 1) {
    description += "; evidence:";
    for (size_t i = 1; i < labels.size(); ++i) description += " " + labels[i];
  }
  if (r.tarpitted_sessions) description += "; held by the tarpit";
  // Key order as in the specification's examples; ordered_json keeps it.
  nlohmann::ordered_json o;
  o["type"] = "indicator";
  o["spec_version"] = "2.1";
  o["id"] = StixId("indicator", "spamsink source " + ip);
  o["created"] = StixTime(created);
  o["modified"] = StixTime(modified);
  o["name"] = "spamsink: mail from " + ip;
  o["description"] = description;
  o["indicator_types"] = {"malicious-activity"};
  // The address is canonical text (digits, dots, hex and colons), so it
  // needs no escaping inside the pattern's quoted string.
  o["pattern"] = std::string("[") + (v4 ? "ipv4-addr" : "ipv6-addr") +
                 ":value = '" + ip + "']";
  o["pattern_type"] = "stix";
  o["pattern_version"] = "2.1";
  o["valid_from"] = StixTime(r.first_seen);
  o["valid_until"] = StixTime(modified + kStixValidSeconds);
  o["labels"] = labels;
  return o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ledger
