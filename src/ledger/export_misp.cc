#include "ledger/export_misp.h"

#include <openssl/evp.h>

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

json EventHead(const std::string& uuid, const std::string& day,
               const MispOptions& o);

// One event being written to out: head, attributes, tail.
class EventWriter {
 public:
  EventWriter(const std::string& day, const MispOptions& o, Sink out)
      : day_(day), uuid_(EventUuid(o, day)), out_(std::move(out)) {
    std::string text = Dump(json{{"Event", EventHead(uuid_, day, o)}});
    // Leave the event object open for its attributes.
    text.resize(text.size() - 2);
    ok_ = out_(text + ",\"Attribute\":[");
  }
  static json Orgc(const MispOptions& o) {
    return {{"name", o.org}, {"uuid", Uuid("spamsink misp org " + o.org)}};
  }
  static json Tags() {
    return json::array({{{"name", "spamsink:spam-source"}}});
  }
  // False once the sink refused (a client gone, a full disk).
  bool Add(const SourceRecord& r, const std::string& value) {
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
    ok_ = ok_ && out_((count_++ > 0 ? "," : "") + Dump(a));
    return ok_;
  }
  bool Finish() { return ok_ && out_("]}}\n"); }
  const std::string& uuid() const { return uuid_; }
  const std::string& day() const { return day_; }

 private:
  std::string day_, uuid_;
  Sink out_;
  bool ok_ = true;
  size_t count_ = 0;
};

json EventHead(const std::string& uuid, const std::string& day,
               const MispOptions& o) {
  json head;
  head["uuid"] = uuid;
  head["info"] = "spamsink: spam sources last seen on " + day;
  head["date"] = day;
  head["threat_level_id"] = "3";
  head["analysis"] = "2";
  head["distribution"] = "3";
  head["published"] = true;
  head["timestamp"] = std::to_string(int64_t(o.now));
  head["publish_timestamp"] = std::to_string(int64_t(o.now));
  head["Orgc"] = EventWriter::Orgc(o);
  head["Tag"] = EventWriter::Tags();
  return head;
}

json ManifestEntry(const std::string& day, const MispOptions& o) {
  json m;
  m["Orgc"] = EventWriter::Orgc(o);
  m["Tag"] = EventWriter::Tags();
  m["info"] = "spamsink: spam sources last seen on " + day;
  m["date"] = day;
  m["analysis"] = "2";
  m["threat_level_id"] = "3";
  m["timestamp"] = std::to_string(int64_t(o.now));
  return m;
}

// A file written beside its name, then renamed into place.
class FileOut {
 public:
  explicit FileOut(std::string path)
      : path_(std::move(path)),
        out_(path_ + ".tmp", std::ios::binary | std::ios::trunc) {}
  Sink sink() {
    return [this](std::string_view t) {
      out_.write(t.data(), std::streamsize(t.size()));
      return bool(out_);
    };
  }
  bool Commit() {
    out_.close();
    if (!out_) return false;
    std::error_code ec;
    fs::rename(path_ + ".tmp", path_, ec);
    return !ec;
  }

 private:
  std::string path_;
  std::ofstream out_;
};

// Visits what q selects in last_seen order, exempt networks left out, with
// each record's day and attribute value.
base::Status ScanByDay(
    Store* store, SourceQuery q, const MispOptions& o,
    const std::function<base::Status(const SourceRecord&, const std::string&,
                                     const std::string&)>& each) {
  q.sort = SortKey::kLastSeen;
  q.ascending = true;
  q.after.reset();
  return store->Scan(q, [&](const SourceRecord& r) -> base::Status {
    if (IsExempt(o.exempt, r.ip)) return {};
    return each(r, Day(r.last_seen), MispValue(r, o.record_v6_prefix));
  });
}

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

// OpenSSL's libcrypto (EVP), as the trap tokens use it: hashes.csv
// needs MD5 and nothing here is secret.
std::string Md5Hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), md, &len, EVP_md5(), nullptr) != 1) {
    return "";
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
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

std::string EventUuid(const MispOptions& o, const std::string& day) {
  return Uuid("spamsink misp event " + o.org + " " + day);
}

base::Result<size_t> WriteMispFeed(Store* store, SourceQuery q,
                                   const MispOptions& o,
                                   const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return base::Status::Error("cannot create " + dir + ": " + ec.message());
  json manifest = json::object();
  std::string hashes;
  std::unique_ptr<FileOut> file;
  std::unique_ptr<EventWriter> event;
  size_t events = 0;
  auto finish = [&]() -> base::Status {
    if (!event) return {};
    if (!event->Finish() || !file->Commit()) {
      return base::Status::Error("cannot write the event of " + event->day());
    }
    manifest[event->uuid()] = ManifestEntry(event->day(), o);
    ++events;
    event.reset();
    file.reset();
    return {};
  };
  auto s = ScanByDay(
      store, q, o,
      [&](const SourceRecord& r, const std::string& day,
          const std::string& value) -> base::Status {
        if (event && event->day() != day) {
          if (auto f = finish(); !f.ok()) return f;
        }
        if (!event) {
          file = std::make_unique<FileOut>(
              (fs::path(dir) / (EventUuid(o, day) + ".json")).string());
          event = std::make_unique<EventWriter>(day, o, file->sink());
        }
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

base::Status StreamMispIndex(Store* store, const SourceQuery& q,
                             const MispOptions& o, MispFile f,
                             const Sink& sink) {
  const base::Status gone = base::Status::Error("client gone");
  std::string day;  // the day being listed (manifest)
  if (f == MispFile::kManifest && !sink("{")) return gone;
  auto s =
      ScanByDay(store, q, o,
                [&](const SourceRecord&, const std::string& d,
                    const std::string& value) -> base::Status {
                  if (f == MispFile::kHashes) {
                    return sink(Md5Hex(value) + "," + EventUuid(o, d) + "\n")
                               ? base::Status()
                               : gone;
                  }
                  if (d == day) return {};
                  std::string entry = (day.empty() ? "" : ",") +
                                      Dump(json(EventUuid(o, d))) + ":" +
                                      Dump(ManifestEntry(d, o));
                  day = d;
                  return sink(entry) ? base::Status() : gone;
                });
  if (!s.ok()) return s;
  if (f == MispFile::kManifest && !sink("}\n")) return gone;
  return {};
}

std::string MispEventDay(const MispOptions& o, std::string_view uuid) {
  // Newest first: a feed is fetched for its recent days.
  for (int back = 0; back < kMispDays; ++back) {
    std::string day = Day(o.now - back * 86400.0);
    if (EventUuid(o, day) == uuid) return day;
  }
  return "";
}

base::Status StreamMispEvent(Store* store, SourceQuery q, const MispOptions& o,
                             const std::string& day, const Sink& sink) {
  struct tm tm {};
  if (strptime(day.c_str(), "%Y-%m-%d", &tm) == nullptr) {
    return base::Status::Error("bad day " + day);
  }
  double start = double(timegm(&tm));
  q.since = std::max(q.since.value_or(start), start);
  q.until = std::min(q.until.value_or(start + 86400), start + 86400);
  EventWriter event(day, o, sink);
  auto s = ScanByDay(store, q, o,
                     [&](const SourceRecord& r, const std::string& d,
                         const std::string& value) -> base::Status {
                       if (d != day) return {};  // a boundary second
                       return event.Add(r, value)
                                  ? base::Status()
                                  : base::Status::Error("client gone");
                     });
  if (!s.ok()) return s;
  return event.Finish() ? base::Status() : base::Status::Error("client gone");
}

}  // namespace ledger
