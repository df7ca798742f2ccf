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

std::string AddressesJson(const SourceRecord& r) {
  if (r.addresses.empty()) return "";
  nlohmann::json sample = nlohmann::json::array();
  for (const auto& e : r.addresses) {
    sample.push_back({e.address.ToString(), e.sessions});
  }
  static const char* kHex = "0123456789abcdef";
  std::string sketch;
  for (uint64_t w : r.address_sketch) {
    for (int shift = 60; shift >= 0; shift -= 4)
      sketch += kHex[(w >> shift) & 15];
  }
  return nlohmann::json{{"sample", sample}, {"sketch", sketch}}.dump();
}

void ParseAddresses(const unsigned char* text, SourceRecord* r) {
  if (text == nullptr || *text == 0) return;
  auto j = nlohmann::json::parse(reinterpret_cast<const char*>(text), nullptr,
                                 false);
  if (!j.is_object()) return;
  if (auto s = j.find("sample"); s != j.end() && s->is_array()) {
    for (const auto& e : *s) {
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() ||
          !e[1].is_number_unsigned() ||
          r->addresses.size() >= kMaxSampledAddresses) {
        continue;
      }
      auto a = base::IpAddress::Parse(e[0].get<std::string>());
      if (a.ok()) r->addresses.push_back({*a, e[1].get<uint64_t>()});
    }
  }
  if (auto s = j.find("sketch"); s != j.end() && s->is_string()) {
    const std::string hex = s->get<std::string>();
    if (hex.size() != 16 * r->address_sketch.size()) return;
    for (size_t i = 0; i < hex.size(); ++i) {
      char c = hex[i];
      int v = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                     : -1;
      if (v < 0) {
        r->address_sketch = {};
        return;
      }
      r->address_sketch[i / 16] |= uint64_t(v) << (60 - 4 * (i % 16));
    }
  }
}

}  // namespace ledger
