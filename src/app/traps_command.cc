// spamsink traps --generate N --domain D --label L: signed trap addresses
// for publishing by hand, attributed to the label when spam arrives.
#include <set>

#include "app/commands.h"
#include "ledger/trap_ledger.h"
#include "traps/site.h"
#include "traps/token.h"

namespace app {

int RunTraps(const config::Config& cfg, const TrapsRequest& req, double now,
             std::ostream& out, std::ostream& err) {
  auto fail = [&err](const std::string& m) {
    err << "spamsink traps: " << m << "\n";
    return 1;
  };
  if (req.count < 1 || req.count > 10000) {
    return fail("--generate: between 1 and 10000 addresses");
  }
  if (req.label.empty() || req.label.size() > 100) {
    return fail(
        "--label: where the addresses will be published (1 to 100 "
        "bytes)");
  }
  bool known = false;
  for (const auto& d : cfg.traps.domains) known = known || d == req.domain;
  if (!known) {
    return fail("--domain: \"" + req.domain +
                "\" is not one of traps.domains (its mail would not be "
                "recognised)");
  }
  auto ring = traps::KeyRing::Parse(cfg.traps.keys);
  if (!ring.ok()) return fail(ring.error());
  if (!cfg.ledger.enabled) {
    return fail("trap attribution needs the ledger (ledger.enabled)");
  }
  const traps::Key& key = ring->current();
  traps::Harvest h;
  h.minute = int64_t(now / 60);
  h.ref = traps::VisitorRef(
      key, "", "label:" + req.label + "@" + std::to_string(now), h.minute);
  h.label = req.label;
  h.time = now;
  h.addresses = req.count;
  {
    auto store = ledger::TrapLedger::OpenConfigured(cfg.ledger, *ring);
    if (!store.ok()) return fail(store.error());
    (*store)->AddHarvest(h);
    if (auto s = (*store)->Flush(); !s.ok()) return fail(s.message());
  }
  std::set<std::string> names;
  for (int i = 0; int(names.size()) < req.count; ++i) {
    std::string name = traps::PersonName(h.ref, i);
    if (i >= 4 * req.count) name += std::to_string(i);  // bounded retries
    if (!names.insert(name).second) continue;
    out << traps::MakeAddress(key, name, req.domain, h.ref, h.minute) << "\n";
  }
  return 0;
}

}  // namespace app
