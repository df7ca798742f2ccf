// tarpit_nft: prints the nftables drop ruleset (or its removal) for the given
// listen endpoints. A stand-in for `spamsink firewall --print` used by
// tests/netns/drop_test.sh; it runs nothing itself.
//
//   tarpit_nft --percent 20 --listen 10.0.0.1:25 [--listen ...]
//              [--exempt CIDR ...] [--all-packets] [--table NAME] [--delete]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tarpit/firewall.h"

int main(int argc, char** argv) {
  tarpit::Options options;
  std::vector<std::string> listen, exempt;
  bool remove = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "tarpit_nft: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--percent") {
      options.drop_percent = std::strtod(value().c_str(), nullptr);
    } else if (a == "--listen") {
      listen.push_back(value());
    } else if (a == "--exempt") {
      exempt.push_back(value());
    } else if (a == "--table") {
      options.nft_table = value();
    } else if (a == "--all-packets") {
      options.drop_data_only = false;
    } else if (a == "--delete") {
      remove = true;
    } else {
      std::fprintf(stderr, "tarpit_nft: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (remove) {
    if (!tarpit::ValidTableName(options.nft_table)) {
      std::fprintf(stderr, "tarpit_nft: bad table name\n");
      return 2;
    }
    std::fputs(tarpit::DeleteScript(options.nft_table)->c_str(), stdout);
    return 0;
  }
  auto ruleset = tarpit::MakeDropRuleset(options, listen, exempt);
  if (!ruleset.ok()) {
    std::fprintf(stderr, "tarpit_nft: %s\n", ruleset.error().c_str());
    return 2;
  }
  auto script = tarpit::AddScript(*ruleset);
  if (!script.ok()) {
    std::fprintf(stderr, "tarpit_nft: %s\n", script.error().c_str());
    return 2;
  }
  std::fputs(script->c_str(), stdout);
  return 0;
}
