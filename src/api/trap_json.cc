#include "api/trap_json.h"

namespace api {

using json = nlohmann::ordered_json;

json HarvestersJson(const std::vector<ledger::Harvester>& harvesters,
                    const std::vector<ledger::TrapDomain>& domains) {
  json list = json::array();
  for (const auto& h : harvesters) {
    json senders = json::array();
    for (const auto& s : h.senders) {
      senders.push_back({{"ip", s.ip},
                         {"first_spam", s.first_spam},
                         {"last_spam", s.last_spam},
                         {"delay_seconds", s.delay_seconds},
                         {"hits", s.hits}});
    }
    list.push_back({{"ip", h.ip},
                    {"label", h.label},
                    {"user_agents", h.user_agents},
                    {"first_harvest", h.first_harvest},
                    {"last_harvest", h.last_harvest},
                    {"pages", h.pages},
                    {"addresses", h.addresses},
                    {"senders", senders}});
  }
  json by_domain = json::array();
  for (const auto& d : domains) {
    by_domain.push_back({{"domain", d.domain},
                         {"recipients", d.recipients},
                         {"linked", d.linked},
                         {"plain", d.plain}});
  }
  return {{"harvesters", list}, {"trap_domains", by_domain}};
}

json TrapLinksJson(const std::vector<ledger::TrapLink>& links) {
  json list = json::array();
  for (const auto& l : links) {
    list.push_back({{"ip", l.harvester_ip},
                    {"label", l.label},
                    {"user_agent", l.user_agent},
                    {"page", l.page},
                    {"harvest_time", l.harvest_time},
                    {"harvest_known", l.harvest_known},
                    {"first_spam", l.first_spam},
                    {"last_spam", l.last_spam},
                    {"delay_seconds", l.delay_seconds},
                    {"hits", l.hits}});
  }
  return list;
}

}  // namespace api
