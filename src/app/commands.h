// The bodies of spamsink's commands; spamsink_main.cc parses the command
// line, assembles the configuration and calls one of these.
#pragma once

#include <ostream>
#include <string>

#include "base/status.h"
#include "config/config.h"

namespace app {

// spamsink [--config FILE] [flags]: runs the SMTP sink until SIGTERM or
// SIGINT. Returns the exit status; messages go to the log (stderr).
int Serve(config::Config config);

enum class FirewallAction {
  kPrint,   // the script that adds the drop table (tarpit.drop_percent)
  kDelete,  // the script that removes it
};
// The nft script for the configuration: tarpit.nft_table, drop_percent,
// drop_data_only and server.listen. Errors name the setting.
base::Result<std::string> FirewallScript(const config::Config& config,
                                         FirewallAction action);
// spamsink firewall [--print | --delete]: prints the script to out.
int RunFirewall(const config::Config& config, FirewallAction action,
                std::ostream& out, std::ostream& err);

}  // namespace app
