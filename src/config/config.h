// The one configuration: the modules' settings structs assembled. Every
// setting is named once, next to its default, in its module's options.h;
// fields.cc holds the table that maps each field to its TOML key, its
// documentation and its command-line flag, from which --print-defaults and
// docs/CONFIGURATION.md are generated.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/options.h"
#include "base/log.h"
#include "base/status.h"
#include "capture/options.h"
#include "dnsbl/options.h"
#include "ledger/options.h"
#include "net/options.h"
#include "smtp/options.h"
#include "tarpit/options.h"
#include "traps/options.h"

namespace config {

// Each module owns its settings struct; config/ only assembles, parses and
// validates them. The aliases keep older spellings compiling.
using ServerConfig = net::Options;
using SmtpConfig = smtp::Options;
using LedgerConfig = ledger::Options;
using ApiConfig = api::Options;
using LogConfig = base::LogOptions;

// The whole configuration, one member per TOML table; the defaults are
// those of each module's struct.
struct Config {
  net::Options server;       // [server]: net/options.h
  smtp::Options smtp;        // [smtp]: smtp/options.h
  ledger::Options ledger;    // [ledger]: ledger/options.h
  api::Options api;          // [api]: api/options.h
  base::LogOptions log;      // [log]: base/log.h
  tarpit::Options tarpit;    // [tarpit]: tarpit/options.h
  dnsbl::Options dnsbl;      // [dnsbl]: dnsbl/options.h
  traps::Options traps;      // [traps]: traps/options.h
  capture::Options capture;  // [capture]: capture/options.h
};

// Parses TOML text. Unknown keys, wrong types and bad values are errors
// naming the key and its line ("config.toml:12: smtp.max_recipients: ...").
base::Result<Config> ParseToml(std::string_view text, std::string_view source);
base::Result<Config> LoadFile(const std::string& path);
// Checks cross-field rules (e.g. the API token) on a complete Config.
base::Status Validate(const Config& config);
// The defaults as a commented TOML file (spamsink --print-defaults).
std::string DefaultsToml();
// The configuration as TOML (spamsink config, like postconf): every
// setting, or with non_default only those that differ from the defaults
// (postconf -n). Reading the output back gives the same Config, except
// secrets (api.token, traps.keys): set, they print as "<redacted>".
std::string EffectiveToml(const Config& config, bool non_default);
// The settings ("tarpit.enabled", ...) whose values differ between a and b.
std::vector<std::string> ChangedKeys(const Config& a, const Config& b);
// "; did you mean smtp.max_recipients?" for an unknown key, or "".
std::string UnknownKeyHint(std::string_view section, std::string_view key);
// The configuration reference in Markdown (docs/CONFIGURATION.md).
std::string ReferenceMarkdown();
// The same as the manual page spamsink.toml(5) (docs/spamsink.toml.5).
std::string ReferenceMan();

}  // namespace config
