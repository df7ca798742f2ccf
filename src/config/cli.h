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
// What one command line says about the configuration: --config FILE and
// the settings' flags. The main command and each subcommand have their own,
// so that `spamsink --config F export` and `spamsink export --config F`
// both work.
struct CommandLine {
  std::string file;  // empty: defaults only
  Overrides overrides;
};

// Adds -c/--config FILE and every setting's flag (AddFlags) to app.
void AddConfigOptions(CLI::App* app, CommandLine* line);

// The configuration the command lines describe: the last --config file
// given (or the defaults), then each line's flags in order (later lines
// win), then Validate. Errors name the file and line, or the flag, the key,
// the value and the reason.
base::Result<Config> Load(const std::vector<const CommandLine*>& lines);

// Applies the given overrides to config; errors name the flag, the key, the
// value and the reason ("--listen (server.listen): \"1.2.3.4:x\": ...").
base::Status ApplyOverrides(const Overrides& overrides, Config* config);

}  // namespace config
