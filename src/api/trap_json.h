// The trap attribution as JSON for /api/v1/harvesters and the "harvesters"
// field of /api/v1/sources/{ip}.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "ledger/trap_ledger.h"

namespace api {

nlohmann::ordered_json HarvestersJson(
    const std::vector<ledger::Harvester>& harvesters,
    const std::vector<ledger::TrapDomain>& domains);
nlohmann::ordered_json TrapLinksJson(const std::vector<ledger::TrapLink>& l);

}  // namespace api
