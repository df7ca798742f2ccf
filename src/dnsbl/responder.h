// The DNSBL's answers (RFC 5782): one query's bytes, its source and the
// time in, the response's bytes out. Pure apart from the shared Index and
// the process counters (dnsbl_* in /metrics); the sockets are net/'s.
//
// - Names: <reversed IPv4 octets>.<zone> and <reversed IPv6 nibbles>.<zone>
//   (32 labels); A gives the reason codes (127.0.0.2 seen sending, .3 bot
//   evidence, .4 tarpitted), TXT the reason and first/last seen; other
//   types at a listed name are NODATA. Unlisted or not an address:
//   NXDOMAIN. The apex has SOA and NS. Outside the zone: REFUSED.
// - Negative answers carry the SOA (TTL negative_ttl, RFC 2308).
// - EDNS0: an OPT is answered with ours (payload 1232); version > 0 is
//   BADVERS. A UDP answer larger than the client's limit (512 without
//   EDNS0) is sent empty with TC set, so the client asks over TCP.
// - Response-rate limiting (UDP only; TCP cannot be spoofed): rate_limit
//   answers per second per source prefix (/ipv4_prefix, /ipv6_prefix),
//   burst of the same size; beyond it answers are dropped, except every
//   slip-th which goes out empty with TC set (a real client retries over
//   TCP; a spoofed victim gets no amplification).
//
// Threading: Answer may be called from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/ip.h"
#include "base/status.h"
#include "dnsbl/listing.h"
#include "dnsbl/options.h"

namespace dnsbl {

class Responder {
 public:
  // Fails on a bad zone, NS or hostmaster name or allow network.
  static base::Result<std::unique_ptr<Responder>> Create(const Options& o,
                                                         Index* index);

  // Returns the response, or "" when none is sent (dropped by the rate
  // limit, or not a query).
  std::string Answer(const uint8_t* data, size_t size,
                     const base::IpAddress& source, bool tcp, double now);

 private:
  Responder(const Options& o, Index* index) : o_(o), index_(index) {}
  // True when an answer to source may be sent now; else *slip tells
  // whether a truncated one goes instead.
  bool Allow(const base::IpAddress& source, double now, bool* slip);
  std::string Build(const struct Query& q, const base::IpAddress& source,
                    bool tcp, double now);

  Options o_;
  Index* index_;
  std::vector<base::Cidr> allow_;
  std::vector<std::string> zone_;  // labels
  std::string zone_wire_, soa_rdata_, ns_rdata_;

  struct Bucket {
    double tokens = 0;
    double updated = 0;
    uint64_t limited = 0;
  };
  std::mutex rrl_mu_;
  std::unordered_map<base::IpAddress, Bucket> rrl_;  // by prefix
};

// The address a query name codes: reversed dotted quad or 32 reversed
// nibbles, as labels; nullopt for anything else.
std::optional<base::IpAddress> AddressOf(const std::vector<std::string>& l);

}  // namespace dnsbl
