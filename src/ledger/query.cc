#include "ledger/query.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <ctime>

namespace ledger {
namespace {

struct SortName {
  SortKey key;
  const char* name;
};
constexpr SortName kSortNames[] = {
    {SortKey::kMessages, "messages"},
    {SortKey::kBytes, "bytes"},
    {SortKey::kLastSeen, "last_seen"},
    {SortKey::kSecondsHeld, "seconds_held"},
    {SortKey::kConnections, "connections"},
    {SortKey::kDelaySeconds, "delay_seconds"},
    {SortKey::kIp, "ip"},
};

base::Result<uint64_t> ParseUint(std::string_view key, std::string_view v) {
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size()) {
    return base::Status::Error("bad " + std::string(key) +
                               ": not a non-negative integer: '" +
                               std::string(v) + "'");
  }
  return out;
}

}  // namespace

bool ParseSortKey(std::string_view name, SortKey* out) {
  for (const auto& s : kSortNames) {
    if (name == s.name) {
      *out = s.key;
      return true;
    }
  }
  return false;
}

const char* SortKeyName(SortKey key) {
  for (const auto& s : kSortNames) {
    if (s.key == key) return s.name;
  }
  return "?";
}

bool IsRealKey(SortKey key) {
  return key == SortKey::kLastSeen || key == SortKey::kSecondsHeld ||
         key == SortKey::kDelaySeconds;
}

namespace {

// A record holding the cursor's position, for SortsBefore.
SourceRecord CursorRecord(SortKey key, const Cursor& c) {
  SourceRecord r;
  r.ip = c.ip;
  switch (key) {
    case SortKey::kMessages:
      r.messages = c.count;
      break;
    case SortKey::kBytes:
      r.bytes = c.count;
      break;
    case SortKey::kLastSeen:
      r.last_seen = c.real;
      break;
    case SortKey::kSecondsHeld:
      r.seconds_held = c.real;
      break;
    case SortKey::kConnections:
      r.connections = c.count;
      break;
    case SortKey::kDelaySeconds:
      r.delay_seconds = c.real;
      break;
    case SortKey::kIp:
      break;
  }
  return r;
}

}  // namespace

std::string FormatCursor(SortKey key, const SourceRecord& rec) {
  if (key == SortKey::kIp) return rec.ip.ToString();
  char buf[64];
  char* end = buf + sizeof buf;
  std::to_chars_result res;
  switch (key) {
    case SortKey::kMessages:
      res = std::to_chars(buf, end, rec.messages);
      break;
    case SortKey::kBytes:
      res = std::to_chars(buf, end, rec.bytes);
      break;
    case SortKey::kConnections:
      res = std::to_chars(buf, end, rec.connections);
      break;
    case SortKey::kLastSeen:
      res = std::to_chars(buf, end, rec.last_seen);
      break;
    case SortKey::kSecondsHeld:
      res = std::to_chars(buf, end, rec.seconds_held);
      break;
    case SortKey::kDelaySeconds:
    default:
      res = std::to_chars(buf, end, rec.delay_seconds);
      break;
  }
  return std::string(buf, res.ptr) + "_" + rec.ip.ToString();
}

base::Result<Cursor> ParseCursor(SortKey key, std::string_view text) {
  auto bad = [&](const std::string& why) {
    return base::Status::Error("bad after: " + why + " (want the \"next\" " +
                               "of the previous page, sorted by " +
                               SortKeyName(key) + ")");
  };
  Cursor c;
  std::string_view ip_text = text;
  if (key != SortKey::kIp) {
    auto sep = text.find('_');
    if (sep == std::string_view::npos) return bad("no '_'");
    std::string_view v = text.substr(0, sep);
    ip_text = text.substr(sep + 1);
    const char* end = v.data() + v.size();
    std::from_chars_result r;
    if (IsRealKey(key)) {
      r = std::from_chars(v.data(), end, c.real);
      if (r.ec == std::errc() && !std::isfinite(c.real))
        r.ec = std::errc::invalid_argument;
    } else {
      r = std::from_chars(v.data(), end, c.count);
    }
    if (v.empty() || r.ec != std::errc() || r.ptr != end) {
      return bad("not a " + std::string(IsRealKey(key) ? "number" : "count") +
                 ": '" + std::string(v) + "'");
    }
  }
  auto ip = base::IpAddress::Parse(ip_text);
  if (!ip.ok()) return bad(ip.error());
  c.ip = *ip;
  return c;
}

bool AfterCursor(const SourceQuery& q, const SourceRecord& rec) {
  if (!q.after) return true;
  return SortsBefore(q, CursorRecord(q.sort, *q.after), rec);
}

bool Matches(const SourceQuery& q, const SourceRecord& r) {
  if (q.since && r.last_seen < *q.since) return false;
  if (q.until && r.last_seen >= *q.until) return false;
  if (q.cidr && !q.cidr->Contains(r.ip)) return false;
  if (r.messages < q.min_messages) return false;
  if ((r.EvidenceMask() & q.evidence) != q.evidence) return false;
  return true;
}

bool SortsBefore(const SourceQuery& q, const SourceRecord& a,
                 const SourceRecord& b) {
  auto cmp = [](auto x, auto y) -> int { return x < y ? -1 : y < x ? 1 : 0; };
  int c = 0;  // ascending comparison of the key
  switch (q.sort) {
    case SortKey::kMessages:
      c = cmp(a.messages, b.messages);
      break;
    case SortKey::kBytes:
      c = cmp(a.bytes, b.bytes);
      break;
    case SortKey::kLastSeen:
      c = cmp(a.last_seen, b.last_seen);
      break;
    case SortKey::kSecondsHeld:
      c = cmp(a.seconds_held, b.seconds_held);
      break;
    case SortKey::kConnections:
      c = cmp(a.connections, b.connections);
      break;
    case SortKey::kDelaySeconds:
      c = cmp(a.delay_seconds, b.delay_seconds);
      break;
    case SortKey::kIp:
      c = cmp(a.ip, b.ip);
      break;
  }
  if (!q.ascending) c = -c;
  if (c != 0) return c < 0;
  return a.ip < b.ip;  // ties: ascending IP
}

SourcePage RunQuery(const SourceQuery& q, std::vector<SourceRecord> all) {
  SourcePage page;
  std::erase_if(all, [&](const SourceRecord& r) { return !Matches(q, r); });
  page.total = all.size();
  std::erase_if(all, [&](const SourceRecord& r) { return !AfterCursor(q, r); });
  auto cmp = [&](const SourceRecord& a, const SourceRecord& b) {
    return SortsBefore(q, a, b);
  };
  uint64_t begin = std::min<uint64_t>(q.offset, all.size());
  uint64_t end = q.limit == 0 ? all.size()
                              : std::min<uint64_t>(all.size(), begin + q.limit);
  std::partial_sort(all.begin(), all.begin() + end, all.end(), cmp);
  page.records.assign(std::make_move_iterator(all.begin() + begin),
                      std::make_move_iterator(all.begin() + end));
  return page;
}

int CidrBits128(const base::Cidr& c) {
  // base::Cidr documents prefix() as family-relative; accept either form.
  int bits = c.prefix();
  if (c.network().is_v4() && bits <= 32) bits += 96;
  return bits;
}

base::Result<double> ParseTime(std::string_view text) {
  if (text.empty()) return base::Status::Error("empty time");
  if (text.find('-') == std::string_view::npos || text.front() == '-') {
    double v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc() && p == text.data() + text.size() &&
        std::isfinite(v)) {
      return v;
    }
    return base::Status::Error(
        "bad time '" + std::string(text) +
        "': want Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
  }
  // ISO 8601 / RFC 3339 in UTC: a date, or a date and time ("T" or a
  // blank between them), with or without the final "Z".
  std::tm tm{};
  std::string s(text);
  if (s.size() == 10) s += "T00:00:00Z";
  if (s.size() > 10 && s[10] == ' ') s[10] = 'T';
  if (s.size() == 19) s += "Z";
  int consumed = 0;
  if (sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon,
             &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
             &consumed) != 6 ||
      consumed != int(s.size()) || tm.tm_mon < 1 || tm.tm_mon > 12 ||
      tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return base::Status::Error(
        "bad time '" + std::string(text) +
        "': want Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return double(timegm(&tm));
}

std::string FormatTime(double unix_seconds) {
  std::time_t t = std::time_t(std::floor(unix_seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

base::Result<SourceQuery> ParseQuery(const Params& params,
                                     const std::vector<std::string>& other_keys,
                                     uint64_t default_limit,
                                     uint64_t max_limit) {
  SourceQuery q;
  q.limit = default_limit;
  for (const auto& kv : params) {
    const std::string& key = kv.first;  // not a binding: lambdas capture it
    const std::string& value = kv.second;
    auto err = [&](const std::string& why) {
      return base::Status::Error("bad " + key + ": " + why);
    };
    if (key == "since" || key == "until") {
      auto t = ParseTime(value);
      if (!t.ok()) return err(t.error());
      (key == "since" ? q.since : q.until) = *t;
    } else if (key == "cidr") {
      auto c = base::Cidr::Parse(value);
      if (!c.ok()) return err(c.error());
      q.cidr = *c;
    } else if (key == "min_messages") {
      auto v = ParseUint(key, value);
      if (!v.ok()) return v.status();
      q.min_messages = *v;
    } else if (key == "evidence") {
      std::string_view rest = value;
      while (!rest.empty()) {
        auto comma = rest.find(',');
        std::string_view name = rest.substr(0, comma);
        Evidence e;
        if (!ParseEvidence(name, &e)) {
          return err("unknown evidence flag '" + std::string(name) + "'");
        }
        q.evidence |= uint32_t(e);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else if (key == "sink") {
      if (value.empty()) return err("want a sink_id");
      q.sink = value;
    } else if (key == "sort") {
      if (!ParseSortKey(value, &q.sort)) {
        return err("unknown sort key '" + value +
                   "' (messages, bytes, last_seen, seconds_held, connections, "
                   "delay_seconds, ip)");
      }
    } else if (key == "order") {
      if (value != "asc" && value != "desc") return err("want asc or desc");
      q.ascending = value == "asc";
    } else if (key == "after") {
      // Parsed below: it depends on sort, which may come later.
    } else if (key == "offset") {
      auto v = ParseUint(key, value);
      if (!v.ok()) return v.status();
      // Stores count in signed 64 bits (SQLite): beyond is out of range.
      if (*v > uint64_t(INT64_MAX)) {
        return err("must be at most " + std::to_string(INT64_MAX));
      }
      q.offset = *v;
    } else if (key == "limit") {
      auto v = ParseUint(key, value);
      if (!v.ok()) return v.status();
      if (max_limit != 0 && (*v == 0 || *v > max_limit)) {
        return err("must be between 1 and " + std::to_string(max_limit));
      }
      if (*v > uint64_t(INT64_MAX)) {
        return err("must be at most " + std::to_string(INT64_MAX));
      }
      q.limit = *v;
    } else if (std::find(other_keys.begin(), other_keys.end(), key) ==
               other_keys.end()) {
      return base::Status::Error("unknown parameter '" + key + "'");
    }
  }
  bool order_given = params.count("order") != 0;
  if (!order_given) q.ascending = q.sort == SortKey::kIp;
  if (auto it = params.find("after"); it != params.end()) {
    auto c = ParseCursor(q.sort, it->second);
    if (!c.ok()) return c.status();
    q.after = *c;
  }
  if (q.since && q.until && *q.until < *q.since) {
    return base::Status::Error("bad until: before since");
  }
  return q;
}

}  // namespace ledger
