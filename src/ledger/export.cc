#include "ledger/export.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <deque>
#include <functional>
#include <optional>

#include "ledger/export_stix.h"

namespace ledger {
namespace {

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

using EntryFn = std::function<base::Status(const Entry&)>;

// Calls f for each entry (the records' networks, merged) in network order.
// REQUIRES: scan yields records by ascending IP, so that the records of one
// network come together: one entry is held at a time.
base::Status ForEachEntry(const RecordScan& scan, const ExportOptions& o,
                          const EntryFn& f) {
  std::optional<Entry> cur;
  auto s = scan([&](const SourceRecord& r) -> base::Status {
    if (IsExempt(o, r.ip)) return {};
    Net n =
        Widen(r.ip, r.ip.is_v4() ? 96 + o.v4_prefix
                                 : std::min(o.v6_prefix, o.record_v6_prefix));
    if (n.bits < 128 && TouchesExempt(o, n)) n = Widen(r.ip, 128);
    if (!cur || cur->net != n) {
      if (cur) {
        if (auto e = f(*cur); !e.ok()) return e;
      }
      cur = Entry{n};
    }
    cur->sources++;
    cur->connections += r.connections;
    cur->messages += r.messages;
    cur->last_seen = std::max(cur->last_seen, r.last_seen);
    return {};
  });
  if (!s.ok()) return s;
  return cur ? f(*cur) : base::Status();
}

// The number of entries (of one family when v4 is set).
base::Result<uint64_t> CountEntries(const RecordScan& scan,
                                    const ExportOptions& o,
                                    std::optional<bool> v4 = std::nullopt) {
  uint64_t n = 0;
  auto s = ForEachEntry(scan, o, [&](const Entry& e) {
    if (!v4 || e.net.v4() == *v4) ++n;
    return base::Status();
  });
  if (!s.ok()) return s;
  return n;
}

bool Covers(const Net& a, const Net& b) {
  return a.bits <= b.bits &&
         Widen(base::IpAddress::FromV6(b.addr), a.bits) == a;
}

// The smallest set of networks covering exactly the same addresses as the
// sorted networks added, emitted in order as soon as they can no longer
// merge: it holds only the networks that may still merge with the next.
class Collapser {
 public:
  explicit Collapser(std::function<base::Status(const Net&)> emit)
      : emit_(std::move(emit)) {}

  base::Status Add(const Net& n) {
    if (!st_.empty() && Covers(st_.back(), n)) return {};
    st_.push_back(n);
    while (st_.size() >= 2) {
      Net& a = st_[st_.size() - 2];
      Net& b = st_.back();
      if (a.bits != b.bits || a.bits < MinBits(a)) break;
      Net parent = Widen(base::IpAddress::FromV6(a.addr), a.bits - 1);
      if (parent != Widen(base::IpAddress::FromV6(b.addr), a.bits - 1) ||
          parent.addr != a.addr) {
        break;
      }
      st_.pop_back();
      st_.back() = parent;
    }
    while (st_.size() >= 2 && Final(st_.front(), st_.back())) {
      if (auto s = emit_(st_.front()); !s.ok()) return s;
      st_.pop_front();
    }
    return {};
  }

  base::Status Finish() {
    for (const Net& n : st_) {
      if (auto s = emit_(n); !s.ok()) return s;
    }
    st_.clear();
    return {};
  }

 private:
  static int MinBits(const Net& n) { return n.v4() ? 97 : 1; }
  // Whether a can no longer change once last (and what follows) came: only
  // a left half can still merge, with a sibling made of what follows.
  static bool Final(const Net& a, const Net& last) {
    if (a.bits < MinBits(a)) return true;
    Net parent = Widen(base::IpAddress::FromV6(a.addr), a.bits - 1);
    if (parent.addr != a.addr) return true;  // a right half
    return !Covers(parent, last);
  }

  std::function<base::Status(const Net&)> emit_;
  std::deque<Net> st_;
};

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

// Collects text and hands it to the sink in pieces of about kChunk bytes.
class Writer {
 public:
  static constexpr size_t kChunk = 64 * 1024;
  explicit Writer(const Sink& sink) : sink_(sink) { buf_.reserve(kChunk); }
  Writer& operator+=(std::string_view text) {
    buf_ += text;
    if (buf_.size() >= kChunk) Flush();
    return *this;
  }
  // Errors once the sink refused: the scan feeding this writer then stops.
  base::Status status() const {
    return ok_ ? base::Status()
               : base::Status::Error("export: the reader went away");
  }
  base::Status Flush() {
    if (ok_ && !buf_.empty()) ok_ = sink_(buf_);
    buf_.clear();
    return status();
  }

 private:
  const Sink& sink_;
  std::string buf_;
  bool ok_ = true;
};

std::string CsvRow(const SourceRecord& r) {
  const uint64_t counts[] = {r.connections,  r.sessions_with_mail,
                             r.transactions, r.messages,
                             r.recipients,   r.bytes};
  std::string out = r.ip.ToString() + "," + FormatTime(r.first_seen) + "," +
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
         NamesField(r.mail_from_domains) + "," + NamesField(r.rcpt_domains) +
         "," + std::to_string(r.tarpitted_sessions) + "," +
         Number(r.delay_seconds) + "," + std::to_string(r.replies_stuttered) +
         "," + std::to_string(r.slow_reads) + "\r\n";
  return out;
}

constexpr const char* kCsvHeader =
    "ip,first_seen,last_seen,connections,sessions_with_mail,"
    "transactions,messages,recipients,bytes,seconds_held,commands,"
    "tls_sessions,proxied_sessions,auth_attempts,early_talker,"
    "pipelining,bare_lf,bare_cr,unknown_commands,protocol_errors,"
    "limits_hit,helo_names,mail_from_domains,rcpt_domains,"
    "tarpit_sessions,tarpit_delay_seconds,tarpit_replies_stuttered,"
    "tarpit_slow_reads\r\n";

// The formats written one record at a time, in the query's order.
bool RowWise(const ExportOptions& o) {
  return o.format == Format::kCsv || o.format == Format::kJsonl ||
         o.format == Format::kStix ||
         (o.format == Format::kPlain && o.v4_prefix == 32 &&
          o.v6_prefix == 128);
}

base::Status RowWiseExport(const RecordScan& scan, const ExportOptions& o,
                           Writer& w) {
  if (o.format == Format::kCsv) w += kCsvHeader;
  if (o.format == Format::kStix) w += StixBundleHead(o.now);
  bool first = true;
  auto s = scan([&](const SourceRecord& r) -> base::Status {
    if (IsExempt(o, r.ip)) return {};
    switch (o.format) {
      case Format::kCsv:
        w += CsvRow(r);
        break;
      case Format::kJsonl:
        w += SourceToJson(r).dump(-1, ' ', false,
                                  nlohmann::json::error_handler_t::replace);
        w += "\n";
        break;
      case Format::kStix:
        if (!first) w += ",";
        w += StixIndicator(r, o.record_v6_prefix);
        break;
      default:
        w += r.ip.ToString();
        w += "\n";
    }
    first = false;
    return w.status();
  });
  if (!s.ok()) return s;
  if (o.format == Format::kStix) w += StixBundleTail();
  return w.status();
}

// The rbldnsd entries of one family.
base::Status RbldnsdEntries(const RecordScan& scan, bool v4,
                            const ExportOptions& o, Writer& w) {
  return ForEachEntry(scan, o, [&](const Entry& e) {
    // Colons would end the A field only before the TXT; '$' would be
    // replaced by the address: the reason text contains neither issue.
    if (e.net.v4() == v4) {
      w += NetString(e.net, true) + " :" + o.a + ":" + Reason(e) + "\n";
    }
    return w.status();
  });
}

base::Status Nftables(const RecordScan& scan, const ExportOptions& o,
                      Writer& w) {
  auto count = CountEntries(scan, o);
  if (!count.ok()) return count.status();
  w += Header(o, "#", *count);
  const std::string fam_table = "inet " + o.table;
  w += "table " + fam_table + " {\n";
  w +=
      "\tset " + o.set + "_v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t}\n";
  w +=
      "\tset " + o.set + "_v6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t}\n";
  w += "}\n";
  for (bool v4 : {true, false}) {
    std::string set = o.set + (v4 ? "_v4" : "_v6");
    w += "flush set " + fam_table + " " + set + "\n";
    size_t n = 0;
    auto s = ForEachEntry(scan, o, [&](const Entry& e) {
      if (e.net.v4() != v4) return w.status();
      // Chunks keep each statement a reasonable size.
      if (n % 1024 == 0) {
        if (n != 0) w += " }\n";
        w += "add element " + fam_table + " " + set + " { ";
      } else {
        w += ", ";
      }
      w += NetString(e.net, false);
      ++n;
      return w.status();
    });
    if (!s.ok()) return s;
    if (n != 0) w += " }\n";
  }
  return w.status();
}

base::Status AggregatedExport(const RecordScan& scan, const ExportOptions& o,
                              Writer& w) {
  auto lines = [&](std::optional<bool> v4, auto line) {
    return ForEachEntry(scan, o, [&](const Entry& e) {
      if (!v4 || e.net.v4() == *v4) w += line(e);
      return w.status();
    });
  };
  switch (o.format) {
    case Format::kPlain:  // widened like cidr, spamd and postfix
      return lines(std::nullopt, [](const Entry& e) {
        return NetString(e.net, false) + "\n";
      });
    case Format::kCidr: {
      Collapser c([&](const Net& n) {
        w += NetString(n, true) + "\n";
        return w.status();
      });
      auto s =
          ForEachEntry(scan, o, [&](const Entry& e) { return c.Add(e.net); });
      return s.ok() ? c.Finish() : s;
    }
    case Format::kRbldnsd:
    case Format::kRbldnsdIp4set:
    case Format::kRbldnsdIp6trie: {
      bool both = o.format == Format::kRbldnsd;
      bool v4 = o.format == Format::kRbldnsdIp4set;
      auto count =
          CountEntries(scan, o, both ? std::nullopt : std::optional<bool>(v4));
      if (!count.ok()) return count.status();
      std::string head = Header(o, "#", *count);
      RbldnsdHeader(&head, o);
      w += head;
      if (!both) return RbldnsdEntries(scan, v4, o, w);
      w += "$DATASET ip4set @\n";
      if (auto s = RbldnsdEntries(scan, true, o, w); !s.ok()) return s;
      w += "$DATASET ip6trie @\n";
      return RbldnsdEntries(scan, false, o, w);
    }
    case Format::kNftables:
      return Nftables(scan, o, w);
    case Format::kPostfix:
    case Format::kSpamd: {
      auto count = CountEntries(scan, o);
      if (!count.ok()) return count.status();
      w += Header(o, "#", *count);
      if (o.format == Format::kSpamd) {
        return lines(std::nullopt, [](const Entry& e) {
          return NetString(e.net, false) + "\n";
        });
      }
      return lines(std::nullopt, [&](const Entry& e) {
        return NetString(e.net, true) + " " + o.action + " " + Reason(e) + "\n";
      });
    }
    default:
      return base::Status::Error("export: unknown format");
  }
}

}  // namespace

base::Status ExportStream(const RecordScan& scan, const ExportOptions& o,
                          const Sink& sink) {
  Writer w(sink);
  auto s =
      RowWise(o) ? RowWiseExport(scan, o, w) : AggregatedExport(scan, o, w);
  if (!s.ok()) return s;
  return w.Flush();
}

base::Status ExportFromStore(Store* store, const SourceQuery& q,
                             const ExportOptions& o, const Sink& sink) {
  if (RowWise(o) || (q.sort == SortKey::kIp && q.ascending)) {
    return ExportStream(
        [&](const Store::Visitor& each) { return store->Scan(q, each); }, o,
        sink);
  }
  // Aggregated formats of a page chosen by another order (e.g. the top 1000
  // senders): the page is read, then ordered by address.
  auto page = store->Query(q);
  if (!page.ok()) return page.status();
  return ExportStream(VectorScan(SortedByIp(std::move(page->records))), o,
                      sink);
}

std::vector<SourceRecord> SortedByIp(std::vector<SourceRecord> records) {
  std::stable_sort(records.begin(), records.end(),
                   [](const SourceRecord& a, const SourceRecord& b) {
                     return a.ip.bytes() < b.ip.bytes();
                   });
  return records;
}

RecordScan VectorScan(std::vector<SourceRecord> records) {
  auto shared =
      std::make_shared<const std::vector<SourceRecord>>(std::move(records));
  return [shared](const Store::Visitor& each) {
    for (const auto& r : *shared) {
      if (auto s = each(r); !s.ok()) return s;
    }
    return base::Status();
  };
}

std::string Export(const std::vector<SourceRecord>& records,
                   const ExportOptions& o) {
  std::string out;
  auto scan =
      RowWise(o) ? VectorScan(records) : VectorScan(SortedByIp(records));
  (void)ExportStream(scan, o, [&](std::string_view text) {
    out += text;
    return true;
  });
  return out;
}

}  // namespace ledger
