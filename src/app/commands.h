// The bodies of spamsink's commands; spamsink_main.cc parses the command
// line, assembles the configuration and calls one of these.
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "base/status.h"
#include "config/config.h"

namespace app {

// Reads the configuration again (the same file and flags) for a reload.
using Reloader = std::function<base::Result<config::Config>()>;

// spamsink [--config FILE] [flags]: runs the SMTP sink until SIGTERM or
// SIGINT. SIGHUP calls reload and applies what can change live (see
// ApplyReload); a failing reload keeps the running configuration. Returns
// the exit status; messages go to the log (stderr).
// config_file: the file SIGHUP reads ("" for none), kept readable by the
// sandbox.
int Serve(config::Config config, Reloader reload,
          const std::string& config_file = "");

// spamsink api [--config FILE] [flags]: a fleet's central read node. Serves
// the HTTP API and console ([api]) from the shared PostgreSQL ledger
// (ledger.store = "postgresql", required) without listening for SMTP, and
// writes nothing to the database. SIGHUP re-reads api.token(_file) and
// tarpit.exempt. Runs until SIGTERM or SIGINT; returns the exit status.
int ServeApi(config::Config config, Reloader reload);

// What a reload does with `next` while `running` runs: the configuration
// to apply (next, but with the settings that need a restart kept as they
// are: listeners, threads, user, PROXY networks, TLS files, the ledger, the
// API, the firewall rule) and the names of the settings that changed in
// each group.
struct ReloadPlan {
  config::Config apply;
  std::vector<std::string> applied;       // live changes
  std::vector<std::string> need_restart;  // changed, kept until a restart
};
ReloadPlan PlanReload(const config::Config& running,
                      const config::Config& next);

// Checks what --check-config checks beyond the settings themselves: the
// TLS files can be read and the ledger's database (or, before it exists,
// its directory) is writable. What only may fail (running as another user
// than the one that will run the server) goes to warnings. Errors name the
// setting.
base::Status CheckSystem(const config::Config& config,
                         std::vector<std::string>* warnings);

enum class FirewallAction {
  kPrint,   // the script that adds the drop table (tarpit.drop_percent)
  kDelete,  // the script that removes it
};
// Switches to `user` (its uid, gid, no supplementary groups). With
// keep_net_admin (the drop rule was applied and must be removed at exit)
// it keeps CAP_NET_ADMIN and nothing else: permitted and ambient, never
// effective, so only the nft it runs gets it; failing to keep it is a
// warning, never fatal. REQUIRES: root.
base::Status DropPrivileges(const std::string& user, bool keep_net_admin);

// The nft script for the configuration: tarpit.nft_table, drop_percent,
// drop_data_only and server.listen. Errors name the setting.
base::Result<std::string> FirewallScript(const config::Config& config,
                                         FirewallAction action);
// spamsink firewall [--print | --delete]: prints the script to out.
int RunFirewall(const config::Config& config, FirewallAction action,
                std::ostream& out, std::ostream& err);

struct TrapsRequest {
  int count = 0;       // --generate N
  std::string domain;  // --domain D, one of traps.domains
  std::string label;   // --label L: where they will be published
};
// spamsink traps --generate N --domain D --label L: records a harvest for
// the label in the ledger (ledger.db_path) and prints N signed addresses,
// one a line. now: Unix seconds.
int RunTraps(const config::Config& config, const TrapsRequest& request,
             double now, std::ostream& out, std::ostream& err);

}  // namespace app
