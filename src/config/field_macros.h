// Private to config/: the macros that make rows of the settings table, and
// the helpers each section's file uses. A section with many settings keeps
// its rows in a file of its own (fields_<section>.cc) and appends them from
// MakeFields(), so fields.cc stays small and sections do not collide.
#pragma once

#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/fields.h"

namespace config {

#define SPAMSINK_FIELD(sec, name, kind, ...)            \
  Field {                                               \
#sec, #name, Kind::kind, __VA_ARGS__,               \
        [](Config & c) -> void* { return &c.sec.name; } \
  }

// For keys that are not the member's own name (tarpit delay ranges).
#define SPAMSINK_FIELD_AT(sec, key, member, kind, ...)    \
  Field {                                                 \
#sec, key, Kind::kind, __VA_ARGS__,                   \
        [](Config & c) -> void* { return &c.sec.member; } \
  }

#define SPAMSINK_DELAY(stage, what)                                \
  SPAMSINK_FIELD_AT(tarpit, #stage "_min", stage.min, kDouble,     \
                    "Shortest delay in seconds before " what       \
                    " for a sender nothing is known of."),         \
      SPAMSINK_FIELD_AT(tarpit, #stage "_max", stage.max, kDouble, \
                        "Longest delay in seconds before " what    \
                        " for a sender nothing is known of.")

base::Status CheckEndpoint(std::string_view v);
base::Status CheckNetwork(std::string_view v);

// Sets f(x) on the row called name ("section.key"), and bounds on it.
void SetField(std::vector<Field>* f, std::string_view name, void (*fn)(Field&));
void SetRange(std::vector<Field>* f, std::string_view name, double lo,
              double hi);

// Each appends its section's rows, with their ranges and checks.
void AppendApiFields(std::vector<Field>* f);
void AppendCaptureFields(std::vector<Field>* f);
void AppendDnsblFields(std::vector<Field>* f);
void AppendLedgerFields(std::vector<Field>* f);
void AppendServerFields(std::vector<Field>* f);
void AppendTrapsFields(std::vector<Field>* f);

}  // namespace config
