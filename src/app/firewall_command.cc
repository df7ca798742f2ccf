// spamsink firewall, and the scripts the server applies for its lifetime.
#include "app/commands.h"
#include "tarpit/firewall.h"

namespace app {

base::Result<std::string> FirewallScript(const config::Config& c,
                                         FirewallAction action) {
  // config::Validate checked the name; a Config built otherwise is checked
  // again here and by the script builders themselves.
  if (auto s = tarpit::CheckTableName(c.tarpit.nft_table); !s.ok()) {
    return base::Status::Error("tarpit.nft_table: " + s.message());
  }
  if (action == FirewallAction::kDelete) {
    return tarpit::DeleteScript(c.tarpit.nft_table);
  }
  if (!(c.tarpit.drop_percent > 0)) {
    return base::Status::Error(
        "tarpit.drop_percent: is 0, so there is nothing to drop; set it, "
        "e.g. --tarpit-drop-percent 10");
  }
  auto rules =
      tarpit::MakeDropRuleset(c.tarpit, c.server.listen, c.tarpit.exempt);
  if (!rules.ok()) return rules.status();
  return tarpit::AddScript(*rules);
}

int RunFirewall(const config::Config& config, FirewallAction action,
                std::ostream& out, std::ostream& err) {
  auto script = FirewallScript(config, action);
  if (!script.ok()) {
    err << "spamsink firewall: " << script.error() << "\n";
    return 1;
  }
  out << *script;
  out.flush();
  return out ? 0 : 1;
}

}  // namespace app
