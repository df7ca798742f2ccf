// The table of settings: one row per Config field, with its TOML key, its
// documentation, its limits and its command-line flag. Parsing, validation,
// --print-defaults, command-line overrides and docs/CONFIGURATION.md are all
// driven from this one table, so a setting cannot be documented in one place
// and behave differently in another.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/config.h"

namespace config {

// kEnum: a C++ enum stored as int; its TOML value is one of `choices`, in
// the enum's declaration order.
enum class Kind { kString, kInt, kInt64, kDouble, kBool, kStrings, kEnum };

struct Field {
  std::string_view section;  // TOML table
  std::string_view key;      // key inside the table
  Kind kind;
  std::string_view doc;
  void* (*get)(Config&);
  double min = 0;            // numeric lower bound (inclusive)
  double max = 1e18;         // numeric upper bound (inclusive)
  std::string_view choices;  // "a|b|c" for enumerated strings, else empty
  std::string_view alias;    // short command-line flag, e.g. "--listen"
  // Checks one string value (each element of a list) as it is read, so a
  // bad value is reported with its key and line; null: any text.
  base::Status (*check)(std::string_view value) = nullptr;
  // A secret (api.token, traps.keys): `spamsink config` prints "<redacted>"
  // for each value set, never the value.
  bool secret = false;

  std::string Name() const;  // "section.key"
  std::string Flag() const;  // "--section-key" (underscores as dashes)
};

const std::vector<Field>& Fields();
const Field* FindField(std::string_view section, std::string_view key);

// Sets a field from command-line text (lists take every value given).
base::Status SetFromStrings(Config* config, const Field& field,
                            const std::vector<std::string>& values);
// A TOML float in the shortest form that reads back as the same double
// ("0.2", "540.0", "1e+18"), never float noise like 0.20000000000000001.
std::string FormatNumber(double v);
// The value of a field as TOML text ("25", "\"postfix\"", "[\"a\", \"b\"]").
std::string ValueToToml(Config& config, const Field& field);

}  // namespace config
