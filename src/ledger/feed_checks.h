// Checks of the feeds (tests only), shared by the export tests and the
// API's: STIX 2.1 indicators against the parts of the specification the
// export implements, and a MISP feed read file by file (from a directory
// or over HTTP).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "ledger/export_misp.h"
#include "ledger/source.h"
#include "ledger/test_util.h"

namespace ledger::testing {

// A source with the given times, 3 messages in 2 connections.
inline SourceRecord FeedRec(const std::string& ip, double first, double last) {
  SourceRecord r;
  r.ip = Ip(ip);
  r.first_seen = first;
  r.last_seen = last;
  r.connections = 2;
  r.messages = 3;
  return r;
}

// --- STIX 2.1 ----------------------------------------------------------------

inline const std::regex& StixUuid() {
  static const std::regex r(
      "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  return r;
}

// Section 2.9: "<type>--" and an RFC 4122 UUID.
inline bool IsStixId(const nlohmann::json& v, const std::string& type) {
  if (!v.is_string()) return false;
  std::string s = v;
  return s.rfind(type + "--", 0) == 0 &&
         std::regex_match(s.substr(type.size() + 2), StixUuid());
}

// Section 3.2: RFC 3339, UTC, "Z", here with milliseconds.
inline bool IsStixTime(const nlohmann::json& v) {
  static const std::regex kTime(
      R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:)"
      R"(([0-5]\d|60)\.\d{3}Z)");
  return v.is_string() && std::regex_match(v.get<std::string>(), kTime);
}

// Checks one indicator against section 4.7 and the pattern grammar of
// section 9 for the one comparison form written; returns its address.
inline std::string CheckIndicator(const nlohmann::json& o) {
  static const std::regex kPattern(
      R"(\[(ipv4-addr|ipv6-addr):value = '([0-9a-f.:]+)(/[0-9]{1,3})?'\])");
  EXPECT_EQ(o.at("type"), "indicator");
  EXPECT_EQ(o.at("spec_version"), "2.1");
  EXPECT_TRUE(IsStixId(o.at("id"), "indicator")) << o.at("id");
  for (const char* k : {"created", "modified", "valid_from", "valid_until"}) {
    EXPECT_TRUE(IsStixTime(o.at(k))) << k << " " << o.at(k);
  }
  // Same format, so text order is time order.
  EXPECT_GE(o.at("modified").get<std::string>(),
            o.at("created").get<std::string>());
  EXPECT_GT(o.at("valid_until").get<std::string>(),
            o.at("valid_from").get<std::string>());
  EXPECT_EQ(o.at("pattern_type"), "stix");
  EXPECT_EQ(o.at("indicator_types"), nlohmann::json({"malicious-activity"}));
  std::smatch m;
  std::string pattern = o.at("pattern");
  EXPECT_TRUE(std::regex_match(pattern, m, kPattern)) << pattern;
  if (m.empty()) return "";
  auto ip = base::IpAddress::Parse(m[2].str());
  EXPECT_TRUE(ip.ok()) << pattern;
  if (!ip.ok()) return "";
  EXPECT_EQ(ip->is_v4(), m[1] == "ipv4-addr") << pattern;
  EXPECT_EQ(ip->ToString(), m[2].str()) << "canonical text";
  if (m[3].matched) {  // a network (STIX 2.1 allows CIDR for both types)
    int bits = std::stoi(m[3].str().substr(1));
    EXPECT_LE(bits, ip->is_v4() ? 32 : 128) << pattern;
  }
  return m[2].str() + m[3].str();
}

// A bundle (section 8) of indicators; returns their addresses in order.
inline std::vector<std::string> CheckStixBundle(const std::string& text) {
  auto bundle = nlohmann::json::parse(text);
  EXPECT_EQ(bundle.at("type"), "bundle");
  EXPECT_TRUE(IsStixId(bundle.at("id"), "bundle")) << bundle.at("id");
  std::vector<std::string> out;
  for (const auto& o : bundle.at("objects")) out.push_back(CheckIndicator(o));
  return out;
}

// --- MISP --------------------------------------------------------------------

struct MispFeedSeen {
  std::map<std::string, std::string> value_event;  // attribute -> event uuid
  std::set<std::string> dates;
  nlohmann::json manifest;
  size_t hash_rows = 0;
};

// Reads a feed through read(name) ("manifest.json", "<uuid>.json",
// "hashes.csv"): every file parses, the manifest lists every event with
// its date and info, each event's ip-src attributes are distinct, their
// last_seen on the event's day, and each hashes.csv row is the MD5 of an
// attribute's value with its event. now: the manifest's timestamp, or
// negative when the caller checks it (a feed served live).
inline MispFeedSeen CheckMispFeed(
    const std::function<std::string(const std::string&)>& read, double now) {
  const std::regex uuid(
      "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  MispFeedSeen seen;
  seen.manifest = nlohmann::json::parse(read("manifest.json"));
  std::set<std::string> values;
  for (const auto& [id, head] : seen.manifest.items()) {
    EXPECT_TRUE(std::regex_match(id, uuid)) << id;
    auto ev = nlohmann::json::parse(read(id + ".json"))["Event"];
    EXPECT_EQ(ev["uuid"], id);
    EXPECT_EQ(ev["date"], head["date"]);
    EXPECT_EQ(ev["info"], head["info"]);
    if (now >= 0) {
      EXPECT_EQ(head["timestamp"], std::to_string(int64_t(now)));
    }
    seen.dates.insert(ev["date"].get<std::string>());
    for (const auto& a : ev["Attribute"]) {
      EXPECT_EQ(a["type"], "ip-src");
      EXPECT_EQ(a["category"], "Network activity");
      EXPECT_TRUE(std::regex_match(a["uuid"].get<std::string>(), uuid));
      std::string v = a["value"];
      EXPECT_TRUE(values.insert(v).second) << v;
      seen.value_event[v] = id;
      EXPECT_EQ(a["last_seen"].get<std::string>().substr(0, 10), ev["date"]);
      EXPECT_EQ(a["first_seen"].get<std::string>().size(), 32u);
    }
  }
  std::istringstream csv(read("hashes.csv"));
  std::string line;
  for (; std::getline(csv, line); ++seen.hash_rows) {
    auto comma = line.find(',');
    EXPECT_NE(comma, std::string::npos) << line;
    if (comma == std::string::npos) continue;
    bool found = false;
    for (const auto& [v, ev] : seen.value_event) {
      if (Md5Hex(v) == line.substr(0, comma)) {
        EXPECT_EQ(line.substr(comma + 1), ev);
        found = true;
      }
    }
    EXPECT_TRUE(found) << line;
  }
  return seen;
}

}  // namespace ledger::testing
