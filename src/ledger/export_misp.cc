#include "ledger/export_misp.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "ledger/export_stix.h"

namespace ledger {

namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

std::string Uuid(std::string_view key) {
  return StixId("x", key).substr(3);  // "x--" + uuid
}

std::string Day(double t) {
  time_t whole = time_t(t < 0 ? 0 : t);
  struct tm tm;
  gmtime_r(&whole, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool IsExempt(const std::vector<base::Cidr>& exempt,
              const base::IpAddress& ip) {
  for (const auto& c : exempt) {
    if (c.Contains(ip)) return true;
  }
  return false;
}

// One event file being written: head, attributes, tail.
class EventWriter {
 public:
  EventWriter(const std::string& dir, const std::string& day,
              const MispOptions& o)
      : day_(day),
        uuid_(Uuid("spamsink misp event " + o.org + " " + day)),
        path_((fs::path(dir) / (uuid_ + ".json")).string()),
        out_(path_ + ".tmp", std::ios::binary | std::ios::trunc) {
    json head;
    head["uuid"] = uuid_;
    head["info"] = "spamsink: spam sources last seen on " + day;
    head["date"] = day;
    head["threat_level_id"] = "3";
    head["analysis"] = "2";
    head["distribution"] = "3";
    head["published"] = true;
    head["timestamp"] = std::to_string(int64_t(o.now));
    head["publish_timestamp"] = std::to_string(int64_t(o.now));
    head["Orgc"] = Orgc(o);
    head["Tag"] = Tags();
    std::string text = Dump(json{{"Event", head}});
    // Leave the event object open for its attributes.
    text.resize(text.size() - 2);
    out_ << text << ",\"Attribute\":[";
  }
  static json Orgc(const MispOptions& o) {
    return {{"name", o.org}, {"uuid", Uuid("spamsink misp org " + o.org)}};
  }
  static json Tags() {
    return json::array({{{"name", "spamsink:spam-source"}}});
  }
  void Add(const SourceRecord& r, const std::string& value) {
    std::vector<json> tags;
    uint32_t mask = r.EvidenceMask();
    const auto& names = EvidenceNames();
    for (size_t i = 0; i < names.size(); ++i) {
      if (mask & (1u << i)) {
        tags.push_back(
            {{"name", "spamsink:evidence=\"" + std::string(names[i]) + "\""}});
      }
    }
    if (r.tarpitted_sessions) {
      tags.push_back({{"name", "spamsink:tarpitted"}});
    }
    json a;
    a["uuid"] = Uuid("spamsink misp attribute " + day_ + " " + value);
    a["type"] = "ip-src";
    a["category"] = "Network activity";
    a["to_ids"] = true;
    a["distribution"] = "5";
    a["value"] = value;
    a["timestamp"] = std::to_string(int64_t(r.last_seen));
    a["first_seen"] = MispTime(r.first_seen);
    a["last_seen"] = MispTime(std::max(r.first_seen, r.last_seen));
    a["comment"] = "spamsink: " + std::to_string(r.messages) + " messages in " +
                   std::to_string(r.connections) + " connections";
    a["Tag"] = tags;
    if (count_++ > 0) out_ << ",";
    out_ << Dump(a);
  }
  // Closes the file; true when it was written and renamed into place.
  bool Finish() {
    out_ << "]}}\n";
    out_.close();
    if (!out_) return false;
    std::error_code ec;
    fs::rename(path_ + ".tmp", path_, ec);
    return !ec;
  }
  const std::string& uuid() const { return uuid_; }
  const std::string& day() const { return day_; }

 private:
  std::string day_, uuid_, path_;
  std::ofstream out_;
  size_t count_ = 0;
};

bool WriteFile(const fs::path& path, const std::string& text) {
  std::string tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.close();
    if (!f) return false;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

// RFC 1321, written out (OpenSSL stays in net/ and traps/): hashes.csv
// needs it and nothing here is secret.
std::string Md5Hex(std::string_view text) {
  static const uint32_t k[64] = {
      0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a,
      0xa8304613, 0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
      0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340,
      0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
      0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8,
      0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
      0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
      0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
      0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92,
      0xffeff47d, 0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
      0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
  static const int r[64] = {7,  12, 17, 22, 7,  12, 17, 22, 7,  12, 17, 22, 7,
                            12, 17, 22, 5,  9,  14, 20, 5,  9,  14, 20, 5,  9,
                            14, 20, 5,  9,  14, 20, 4,  11, 16, 23, 4,  11, 16,
                            23, 4,  11, 16, 23, 4,  11, 16, 23, 6,  10, 15, 21,
                            6,  10, 15, 21, 6,  10, 15, 21, 6,  10, 15, 21};
  std::string m(text);
  uint64_t bits = uint64_t(text.size()) * 8;
  m.push_back(char(0x80));
  while (m.size() % 64 != 56) m.push_back('\0');
  for (int i = 0; i < 8; ++i) m.push_back(char(bits >> (8 * i)));
  uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  for (size_t off = 0; off < m.size(); off += 64) {
    uint32_t w[16];
    for (int i = 0; i < 16; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(&m[off + 4 * i]);
      w[i] = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
             uint32_t(p[3]) << 24;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 64; ++i) {
      uint32_t f;
      int g;
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) % 16;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) % 16;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) % 16;
      }
      uint32_t t = d;
      d = c;
      c = b;
      uint32_t x = a + f + k[i] + w[g];
      b = b + ((x << r[i]) | (x >> (32 - r[i])));
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
  }
  std::string out;
  char buf[3];
  for (uint32_t v : h) {
    for (int i = 0; i < 4; ++i) {
      snprintf(buf, sizeof buf, "%02x", unsigned((v >> (8 * i)) & 0xff));
      out += buf;
    }
  }
  return out;
}

std::string MispTime(double t) {
  if (!std::isfinite(t) || t < 0) t = 0;
  time_t whole = time_t(t);
  int us = std::clamp(int((t - double(whole)) * 1e6), 0, 999999);
  struct tm tm;
  gmtime_r(&whole, &tm);
  char buf[80];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, us);
  return buf;
}

std::string MispValue(const SourceRecord& r, int record_v6_prefix) {
  if (r.ip.is_v4() || record_v6_prefix >= 128) return r.ip.ToString();
  auto c = base::Cidr::Parse(r.ip.ToString() + "/" +
                             std::to_string(record_v6_prefix));
  return c.ok() ? c->ToString() : r.ip.ToString();
}

base::Result<size_t> WriteMispFeed(Store* store, SourceQuery q,
                                   const MispOptions& o,
                                   const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return base::Status::Error("cannot create " + dir + ": " + ec.message());
  q.sort = SortKey::kLastSeen;
  q.ascending = true;
  q.after.reset();
  json manifest = json::object();
  std::string hashes;
  std::unique_ptr<EventWriter> event;
  size_t events = 0;
  auto finish = [&]() -> base::Status {
    if (!event) return {};
    if (!event->Finish()) {
      return base::Status::Error("cannot write the event of " + event->day());
    }
    json m;
    m["Orgc"] = EventWriter::Orgc(o);
    m["Tag"] = EventWriter::Tags();
    m["info"] = "spamsink: spam sources last seen on " + event->day();
    m["date"] = event->day();
    m["analysis"] = "2";
    m["threat_level_id"] = "3";
    m["timestamp"] = std::to_string(int64_t(o.now));
    manifest[event->uuid()] = std::move(m);
    ++events;
    event.reset();
    return {};
  };
  auto s = store->Scan(q, [&](const SourceRecord& r) -> base::Status {
    if (IsExempt(o.exempt, r.ip)) return {};
    std::string day = Day(r.last_seen);
    if (event && event->day() != day) {
      if (auto f = finish(); !f.ok()) return f;
    }
    if (!event) event = std::make_unique<EventWriter>(dir, day, o);
    std::string value = MispValue(r, o.record_v6_prefix);
    event->Add(r, value);
    hashes += Md5Hex(value) + "," + event->uuid() + "\n";
    return {};
  });
  if (!s.ok()) return s;
  if (auto f = finish(); !f.ok()) return f;
  if (!WriteFile(fs::path(dir) / "hashes.csv", hashes) ||
      !WriteFile(fs::path(dir) / "manifest.json", Dump(manifest) + "\n")) {
    return base::Status::Error("cannot write the manifest in " + dir);
  }
  return events;
}

}  // namespace ledger
