// Command-line overrides for every setting in the table (CLI11).
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/config.h"

namespace config {

// Values given on the command line, by field name ("smtp.max_recipients").
using Overrides = std::map<std::string, std::vector<std::string>>;

// Adds --section-key (and its alias) for every field to app.
void AddFlags(CLI::App* app, Overrides* overrides);
// Applies the given overrides to config; errors name the flag, the key, the
// value and the reason ("--listen (server.listen): \"1.2.3.4:x\": ...").
base::Status ApplyOverrides(const Overrides& overrides, Config* config);

}  // namespace config
