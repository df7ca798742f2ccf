#include "dnsbl/responder.h"

#include <algorithm>
#include <array>

#include "base/metrics.h"
#include "dnsbl/wire.h"

namespace dnsbl {
namespace {

constexpr size_t kMaxRrlEntries = 1 << 16;

base::IpAddress Prefix(const base::IpAddress& ip, int v4, int v6) {
  auto b = ip.bytes();
  int bits = ip.is_v4() ? 96 + v4 : v6;
  for (int i = 0; i < 16; ++i) {
    int keep = std::clamp(bits - 8 * i, 0, 8);
    b[i] &= uint8_t(0xff00 >> keep);
  }
  return base::IpAddress::FromV6(b);
}

int HexDigit(const std::string& l) {
  if (l.size() != 1) return -1;
  char c = l[0];
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::optional<base::IpAddress> AddressOf(const std::vector<std::string>& l) {
  if (l.size() == 4) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) {
      const auto& s = l[i];
      if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) {
        return std::nullopt;
      }
      int x = 0;
      for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        x = x * 10 + (c - '0');
      }
      if (x > 255) return std::nullopt;
      v = v << 8 | uint32_t(x);
    }
    return base::IpAddress::FromV4(v);
  }
  if (l.size() == 32) {
    std::array<uint8_t, 16> b{};
    for (int i = 0; i < 32; ++i) {
      int d = HexDigit(l[31 - i]);
      if (d < 0) return std::nullopt;
      b[i / 2] |= uint8_t(i % 2 == 0 ? d << 4 : d);
    }
    return base::IpAddress::FromV6(b);
  }
  return std::nullopt;
}

base::Result<std::unique_ptr<Responder>> Responder::Create(const Options& o,
                                                           Index* index) {
  std::unique_ptr<Responder> r(new Responder(o, index));
  r->zone_ = SplitName(o.zone);
  if (r->zone_.empty() || !EncodeName(r->zone_, &r->zone_wire_)) {
    return base::Status::Error("dnsbl.zone: \"" + o.zone +
                               "\" is not a domain name");
  }
  std::string ns_wire, rname_wire;
  auto ns = o.ns.empty() ? SplitName("ns." + o.zone) : SplitName(o.ns);
  if (!EncodeName(ns, &ns_wire)) {
    return base::Status::Error("dnsbl.ns: \"" + o.ns +
                               "\" is not a domain name");
  }
  auto rname = o.hostmaster.empty() ? SplitName("hostmaster." + o.zone)
                                    : SplitName(o.hostmaster);
  if (!EncodeName(rname, &rname_wire)) {
    return base::Status::Error("dnsbl.hostmaster: \"" + o.hostmaster +
                               "\" is not a domain name");
  }
  for (const auto& a : o.allow) {
    auto c = base::Cidr::Parse(a);
    if (!c.ok()) return base::Status::Error("dnsbl.allow: " + c.error());
    r->allow_.push_back(*c);
  }
  r->ns_rdata_ = ns_wire;
  // The serial is fixed: answers are live, there is nothing to transfer.
  r->soa_rdata_ = SoaRdata(ns_wire, rname_wire, 1, 3600, 600, 86400,
                           uint32_t(o.negative_ttl));
  return r;
}

bool Responder::Allow(const base::IpAddress& source, double now, bool* slip) {
  *slip = false;
  if (o_.rate_limit <= 0) return true;
  auto key = Prefix(source, o_.ipv4_prefix, o_.ipv6_prefix);
  std::lock_guard lock(rrl_mu_);
  if (rrl_.size() >= kMaxRrlEntries && !rrl_.contains(key)) {
    // Full: forget buckets that have refilled (they hold no state worth
    // keeping); if none, start over rather than grow.
    std::erase_if(rrl_, [&](const auto& kv) {
      return kv.second.tokens + (now - kv.second.updated) * o_.rate_limit >=
             o_.rate_limit;
    });
    if (rrl_.size() >= kMaxRrlEntries) rrl_.clear();
  }
  auto [it, fresh] = rrl_.try_emplace(key);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = o_.rate_limit;
    b.updated = now;
  }
  b.tokens = std::min<double>(
      o_.rate_limit, b.tokens + std::max(0.0, now - b.updated) * o_.rate_limit);
  b.updated = now;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return true;
  }
  ++b.limited;
  *slip = o_.slip > 0 && b.limited % uint64_t(o_.slip) == 0;
  return false;
}

std::string Responder::Answer(const uint8_t* data, size_t size,
                              const base::IpAddress& source, bool tcp,
                              double now) {
  base::Count(base::Counter::kDnsblQueries);
  if (tcp) base::Count(base::Counter::kDnsblTcpQueries);
  Query q = ParseQuery(data, size);
  if (q.result == Query::Result::kDrop) {
    base::Count(base::Counter::kDnsblDropped);
    return "";
  }
  bool slip = false;
  if (!tcp && !Allow(source, now, &slip)) {
    base::Count(base::Counter::kDnsblRateLimited);
    if (!slip) return "";
    base::Count(base::Counter::kDnsblSlipped);
    ResponseWriter w(q, kRcodeNoError, true);
    w.SetTruncated();
    return w.bytes();
  }
  if (q.result != Query::Result::kOk) {
    base::Count(base::Counter::kDnsblFormErr);
    ResponseWriter w(
        q, q.result == Query::Result::kNotImp ? kRcodeNotImp : kRcodeFormErr,
        false);
    return w.bytes();
  }
  std::string out = Build(q, source, tcp, now);
  size_t limit = tcp ? 65535
                     : (q.edns ? std::clamp<size_t>(q.udp_size, kPlainUdpSize,
                                                    kEdnsUdpSize)
                               : kPlainUdpSize);
  if (out.size() > limit) {
    base::Count(base::Counter::kDnsblTruncated);
    Query bare = q;
    ResponseWriter w(bare, out[3] & 0xf, true);
    w.SetTruncated();
    if (q.edns) w.AddOpt(kEdnsUdpSize, 0, q.dnssec_ok);
    out = w.bytes();
  }
  return out;
}

std::string Responder::Build(const Query& q, const base::IpAddress& source,
                             bool tcp, double now) {
  auto finish = [&](ResponseWriter& w, bool negative) -> std::string {
    if (negative) {
      w.Add(ResponseWriter::kAuthority, zone_wire_, kTypeSoa,
            uint32_t(o_.negative_ttl), soa_rdata_);
    }
    if (q.edns) w.AddOpt(kEdnsUdpSize, 0, q.dnssec_ok);
    return w.bytes();
  };
  if (q.edns && q.edns_version > 0) {
    base::Count(base::Counter::kDnsblFormErr);
    ResponseWriter w(q, kRcodeBadVers & 0xf, false);
    w.AddOpt(kEdnsUdpSize, kRcodeBadVers >> 4, q.dnssec_ok);
    return w.bytes();
  }
  bool in_zone = q.labels.size() >= zone_.size() &&
                 std::equal(zone_.rbegin(), zone_.rend(), q.labels.rbegin());
  if (!in_zone || (q.qclass != kClassIn && q.qclass != kClassAny)) {
    base::Count(base::Counter::kDnsblRefused);
    ResponseWriter w(q, kRcodeRefused, false);
    return finish(w, false);
  }
  std::vector<std::string> prefix(q.labels.begin(),
                                  q.labels.end() - zone_.size());
  uint32_t ttl = uint32_t(o_.ttl);
  if (prefix.empty()) {  // the apex
    ResponseWriter w(q, kRcodeNoError, true);
    bool any = q.qtype == kTypeAny;
    if (q.qtype == kTypeSoa || any) {
      w.AddAtQuestion(ResponseWriter::kAnswer, kTypeSoa, 3600, soa_rdata_);
    }
    if (q.qtype == kTypeNs || any) {
      w.AddAtQuestion(ResponseWriter::kAnswer, kTypeNs, 3600, ns_rdata_);
    }
    return finish(w, !(q.qtype == kTypeSoa || q.qtype == kTypeNs || any));
  }
  auto ip = AddressOf(prefix);
  std::optional<Listing> listing;
  if (ip) listing = Decide(o_, allow_, *ip, index_->Lookup(*ip, now), now);
  if (!listing) {
    base::Count(base::Counter::kDnsblNxDomain);
    ResponseWriter w(q, kRcodeNxDomain, true);
    return finish(w, true);
  }
  base::Count(base::Counter::kDnsblListed);
  ResponseWriter w(q, kRcodeNoError, true);
  bool any = q.qtype == kTypeAny;
  if (q.qtype == kTypeA || any) {
    for (uint32_t c : listing->codes) {
      w.AddAtQuestion(ResponseWriter::kAnswer, kTypeA, ttl, ARdata(c));
    }
  }
  if (q.qtype == kTypeTxt || any) {
    w.AddAtQuestion(ResponseWriter::kAnswer, kTypeTxt, ttl,
                    TxtRdata(listing->txt));
  }
  return finish(w, !(q.qtype == kTypeA || q.qtype == kTypeTxt || any));
}

}  // namespace dnsbl
