// The nftables ruleset that drops a fraction of incoming packets to the SMTP
// listen ports, so that senders retransmit (and pay in time and bandwidth)
// while we pay nothing. Pure text generation: applying it (`nft -f -`, needs
// CAP_NET_ADMIN) and removing it on exit is the caller's job.
//
// The rules live in their own table (family inet, default "spamsink_drop"),
// so adding replaces it atomically and removing touches nothing else; in
// particular not the exports' table "spamsink" with its sets. Only
// packets of established flows are dropped: SYN, FIN and RST always pass (the
// sender commits its connection slot first), and with data_only also pure
// ACKs, so our own replies are never retransmitted by us.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/endpoint.h"
#include "base/ip.h"
#include "base/status.h"
#include "tarpit/options.h"

namespace tarpit {

struct DropRuleset {
  std::string table = "spamsink_drop";  // see ValidTableName
  double percent = 0;                   // (0, 100]; resolution 0.01
  bool data_only = true;
  // At least one; port 0 is an error. Address 0.0.0.0 matches every IPv4
  // address, :: every address of both families (as a dual-stack socket).
  std::vector<base::Endpoint> endpoints;
  std::vector<base::Cidr> exempt;  // sources never dropped
};

// From the tarpit options and server.listen ("host:port" strings, parsed by
// base::Endpoint; the firewall needs a port, so port 0 is an error).
base::Result<DropRuleset> MakeDropRuleset(
    const Options& options, const std::vector<std::string>& listen,
    const std::vector<std::string>& exempt = {});

// The script for `nft -f`: replaces the table with the drop rules in one
// transaction (an existing table of that name is deleted first).
base::Result<std::string> AddScript(const DropRuleset& ruleset);

// The script for `nft -f` that removes the table; applying it succeeds
// whether or not the table exists. An invalid table name is an error (the
// name is pasted into the script, so it must not carry statements).
base::Result<std::string> DeleteScript(std::string_view table);

// True if `table` is a name the scripts accept: a letter or _, then
// letters, digits, _ and -, at most 32 in all. Nothing else can reach an
// nft script through the name (no blanks, quotes, ; or newlines).
bool ValidTableName(std::string_view table);
// ValidTableName as a Status whose message quotes the name and says why.
base::Status CheckTableName(std::string_view table);

}  // namespace tarpit
