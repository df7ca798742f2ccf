#include "ledger/json_fields.h"

#include <nlohmann/json.hpp>

namespace ledger {

std::string NamesJson(const std::vector<peer::NameCount>& names) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& n : names) j.push_back({n.name, n.count});
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<peer::NameCount> ParseNames(const unsigned char* text) {
  std::vector<peer::NameCount> out;
  if (text == nullptr) return out;
  auto j = nlohmann::json::parse(reinterpret_cast<const char*>(text), nullptr,
                                 /*allow_exceptions=*/false);
  if (!j.is_array()) return out;
  for (const auto& e : j) {
    if (e.is_array() && e.size() == 2 && e[0].is_string() &&
        e[1].is_number_unsigned() && out.size() < peer::kMaxNames) {
      out.push_back({e[0].get<std::string>(), e[1].get<uint32_t>()});
    }
  }
  return out;
}

std::string ReasonsJson(const SourceRecord& r) {
  nlohmann::json j = nlohmann::json::object();
  for (int i = 0; i < kNumCloseReasons; ++i) {
    if (r.close_reasons[i] != 0) j[CloseReasonKey(i)] = r.close_reasons[i];
  }
  return j.dump();
}

void ParseReasons(const unsigned char* text, SourceRecord* r) {
  if (text == nullptr) return;
  auto j = nlohmann::json::parse(reinterpret_cast<const char*>(text), nullptr,
                                 false);
  if (!j.is_object()) return;
  for (const auto& [k, v] : j.items()) {
    int i = CloseReasonIndex(k);
    if (i >= 0 && v.is_number_unsigned())
      r->close_reasons[i] = v.get<uint64_t>();
  }
}

}  // namespace ledger
