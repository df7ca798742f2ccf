// The DNSBL responder's settings ([dnsbl] in the configuration): one struct
// with documented in-class defaults. Plain data; config/ parses and
// validates it.
#pragma once

#include <string>
#include <vector>

namespace dnsbl {

struct Options {
  // Behaviour.
  bool enabled = false;
  std::string zone = "bl.example.net";  // the apex; queries outside: REFUSED
  // "host:port" for both UDP and TCP (port 53 needs CAP_NET_BIND_SERVICE).
  std::string listen = "127.0.0.1:5353";
  // Listing policy: a source is listed when it was last seen within
  // window_seconds and at least one reason holds: messages >= min_messages
  // or connections >= min_connections (127.0.0.2, "seen sending"), bot
  // evidence (127.0.0.3: early talker, pipelining, bare LF/CR, protocol
  // errors) or tarpitted sessions (127.0.0.4). A threshold of 0 is off.
  int min_messages = 1;
  int min_connections = 3;
  bool list_bot_evidence = true;
  bool list_tarpitted = true;
  double window_seconds = 7 * 86400;
  std::vector<std::string> allow;  // networks never listed (CIDR)
  int ttl = 300;                   // listed answers
  int negative_ttl = 60;           // NXDOMAIN / NODATA (SOA minimum, RFC 2308)
  std::string ns = "";             // NS name at the apex; empty: "ns." + zone
  std::string hostmaster = "";     // SOA RNAME; empty: "hostmaster." + zone
  // Cost per client.
  int rate_limit = 20;  // UDP responses per second per source prefix; 0 off
  int slip = 2;         // every slip-th limited answer goes out truncated
  int ipv4_prefix = 24;
  int ipv6_prefix = 56;
  int max_tcp_clients = 64;
  double tcp_idle_timeout = 5;
  int max_entries = 1 << 20;  // sources held in memory
};

}  // namespace dnsbl
