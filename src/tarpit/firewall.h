// The nftables ruleset that drops a fraction of incoming packets to the SMTP
// listen ports, so that senders retransmit (and pay in time and bandwidth)
// while we pay nothing. Pure text generation: applying it (`nft -f -`, needs
// CAP_NET_ADMIN) and removing it on exit is the caller's job.
//
// The rules live in their own table (family inet, default "spamsink"), so
// adding replaces it atomically and removing touches nothing else. Only
// packets of established flows are dropped: SYN, FIN and RST always pass (the
// sender commits its connection slot first), and with data_only also pure
// ACKs, so our own replies are never retransmitted by us.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ip.h"
#include "base/status.h"
#include "tarpit/options.h"

namespace tarpit {

// A listen address as the firewall sees it. No address: every address of
// the family (0.0.0.0 -> IPv4 only; [::] -> both, as a dual-stack socket).
struct Endpoint {
  std::optional<base::IpAddress> address;
  bool v4_only = false;  // 0.0.0.0
  uint16_t port = 0;
};

// Parses "192.0.2.1:25", "[2001:db8::1]:25", "0.0.0.0:25", "[::]:25". Host
// names are errors: a rule needs an address.
base::Result<Endpoint> ParseEndpoint(std::string_view listen);

struct DropRuleset {
  std::string table = "spamsink";  // [A-Za-z_][A-Za-z0-9_-]*, <= 32 chars
  double percent = 0;              // (0, 100]; resolution 0.01
  bool data_only = true;
  std::vector<Endpoint> endpoints;  // at least one
  std::vector<base::Cidr> exempt;   // sources never dropped
};

// From the tarpit options and server.listen ("host:port" strings).
base::Result<DropRuleset> MakeDropRuleset(
    const Options& options, const std::vector<std::string>& listen,
    const std::vector<std::string>& exempt = {});

// The script for `nft -f`: replaces the table with the drop rules in one
// transaction (an existing table of that name is deleted first).
base::Result<std::string> AddScript(const DropRuleset& ruleset);

// The script for `nft -f` that removes the table; succeeds whether or not
// the table exists.
// REQUIRES: table is a valid name (as AddScript checks).
std::string DeleteScript(std::string_view table);

// True if `table` is a name the scripts accept.
bool ValidTableName(std::string_view table);

}  // namespace tarpit
