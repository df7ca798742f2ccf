#include "config/field_macros.h"

namespace config {

void AppendDnsblFields(std::vector<Field>* out) {
  std::vector<Field> f = {
      SPAMSINK_FIELD(dnsbl, enabled, kBool,
                     "Answer DNSBL queries (RFC 5782) live from what the "
                     "sink has seen; see docs/DNSBL.md."),
      SPAMSINK_FIELD(dnsbl, zone, kString,
                     "The DNSBL zone; queries outside it are REFUSED."),
      SPAMSINK_FIELD(dnsbl, listen, kString,
                     "UDP and TCP address of the DNSBL, \"host:port\" (port "
                     "53 needs CAP_NET_BIND_SERVICE, kept by binding before "
                     "--user)."),
      SPAMSINK_FIELD(dnsbl, min_messages, kInt,
                     "List (127.0.0.2) a source that sent this many "
                     "messages; 0: off."),
      SPAMSINK_FIELD(dnsbl, min_connections, kInt,
                     "List (127.0.0.2) a source that opened this many "
                     "connections; 0: off."),
      SPAMSINK_FIELD(dnsbl, list_bot_evidence, kBool,
                     "List (127.0.0.3) a source that showed bot evidence: "
                     "early talking, pipelining, bare LF or CR."),
      SPAMSINK_FIELD(dnsbl, list_tarpitted, kBool,
                     "List (127.0.0.4) a source the tarpit held."),
      SPAMSINK_FIELD(dnsbl, window_seconds, kDouble,
                     "Only sources seen within this many seconds are "
                     "listed; 0: no limit."),
      SPAMSINK_FIELD(dnsbl, allow, kStrings, "Networks (CIDR) never listed."),
      SPAMSINK_FIELD(dnsbl, ttl, kInt, "TTL in seconds of listed answers."),
      SPAMSINK_FIELD(dnsbl, negative_ttl, kInt,
                     "TTL in seconds of NXDOMAIN and NODATA (the SOA "
                     "minimum)."),
      SPAMSINK_FIELD(dnsbl, ns, kString,
                     "NS name at the apex; empty: ns.<zone>."),
      SPAMSINK_FIELD(dnsbl, hostmaster, kString,
                     "SOA mailbox as a name; empty: hostmaster.<zone>."),
      SPAMSINK_FIELD(dnsbl, rate_limit, kInt,
                     "UDP answers per second per source prefix; beyond it "
                     "answers are dropped (0: no limit)."),
      SPAMSINK_FIELD(dnsbl, slip, kInt,
                     "Every slip-th rate-limited answer is sent empty with "
                     "TC set, so real clients retry over TCP; 0: none."),
      SPAMSINK_FIELD(dnsbl, ipv4_prefix, kInt,
                     "IPv4 prefix length that shares one rate limit."),
      SPAMSINK_FIELD(dnsbl, ipv6_prefix, kInt,
                     "IPv6 prefix length that shares one rate limit."),
      SPAMSINK_FIELD(dnsbl, max_tcp_clients, kInt,
                     "Open DNSBL TCP connections at most; more are closed."),
      SPAMSINK_FIELD(dnsbl, tcp_idle_timeout, kDouble,
                     "Seconds a DNSBL TCP connection may wait for a query."),
      SPAMSINK_FIELD(dnsbl, max_entries, kInt,
                     "Sources the DNSBL holds in memory; the oldest-seen "
                     "are forgotten first."),
  };
  auto range = [&](std::string_view name, double lo, double hi) {
    SetRange(&f, name, lo, hi);
  };
  auto set = [&](std::string_view name, void (*fn)(Field&)) {
    SetField(&f, name, fn);
  };
  range("dnsbl.min_messages", 0, 1e9);
  range("dnsbl.min_connections", 0, 1e9);
  range("dnsbl.window_seconds", 0, 1e10);
  range("dnsbl.ttl", 0, 604800);
  range("dnsbl.negative_ttl", 0, 86400);
  range("dnsbl.rate_limit", 0, 1e7);
  range("dnsbl.slip", 0, 100);
  range("dnsbl.ipv4_prefix", 8, 32);
  range("dnsbl.ipv6_prefix", 16, 128);
  range("dnsbl.max_tcp_clients", 1, 100000);
  range("dnsbl.tcp_idle_timeout", 0.1, 3600);
  range("dnsbl.max_entries", 1000, 1e9);
  set("dnsbl.listen", [](Field& x) { x.check = CheckEndpoint; });
  set("dnsbl.allow", [](Field& x) { x.check = CheckNetwork; });
  out->insert(out->end(), f.begin(), f.end());
}

}  // namespace config
