#include "config/config.h"

#include <dlfcn.h>
#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "api/token.h"
#include "base/log.h"
#include "config/fields.h"
#include "traps/token.h"

// 0 in a build without the PostgreSQL store (src/config/CMakeLists.txt sets
// it for this file alone, so that the other objects stay identical)
#ifndef SPAMSINK_POSTGRES
#define SPAMSINK_POSTGRES 1
#endif

namespace {

// False when built with -DSPAMSINK_POSTGRES=OFF, or when the libpq.so.5
// loaded is spamsink's stub (src/ledger/libpq_absent.cc: the appliance).
bool HavePostgres() {
  return SPAMSINK_POSTGRES &&
         dlsym(RTLD_DEFAULT, "spamsink_libpq_absent") == nullptr;
}

}  // namespace

namespace config {
namespace {

std::string Where(std::string_view source, const toml::node& node) {
  return std::string(source) + ":" + std::to_string(node.source().begin.line) +
         ": ";
}

// Converts one TOML value to the strings SetFromStrings understands, checking
// its TOML type against the field's kind.
base::Status NodeToStrings(const Field& f, const toml::node& node,
                           std::vector<std::string>* out) {
  auto type_error = [&](const char* want) {
    return base::Status::Error(std::string("expected ") + want);
  };
  switch (f.kind) {
    case Kind::kEnum:
    case Kind::kString:
      if (!node.is_string()) return type_error("a string");
      out->push_back(**node.as_string());
      return {};
    case Kind::kInt:
    case Kind::kInt64:
      if (!node.is_integer()) return type_error("an integer");
      out->push_back(std::to_string(**node.as_integer()));
      return {};
    case Kind::kDouble:
      if (node.is_integer()) {
        out->push_back(std::to_string(**node.as_integer()));
      } else if (node.is_floating_point()) {
        out->push_back(FormatNumber(**node.as_floating_point()));
      } else {
        return type_error("a number");
      }
      return {};
    case Kind::kBool:
      if (!node.is_boolean()) return type_error("true or false");
      out->push_back(**node.as_boolean() ? "true" : "false");
      return {};
    case Kind::kStrings: {
      const toml::array* arr = node.as_array();
      if (!arr) return type_error("an array of strings");
      for (const auto& el : *arr) {
        if (!el.is_string()) return type_error("an array of strings");
        out->push_back(**el.as_string());
      }
      return {};
    }
  }
  return {};
}

// Numbers in messages: shortest round trip, integers without ".0".
std::string Number(double v) {
  std::string s = FormatNumber(v);
  if (s.size() > 2 && s.ends_with(".0")) s.resize(s.size() - 2);
  return s;
}

// Edit distance (insertions, deletions, substitutions), for "did you mean".
size_t Distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min(
          {row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "; did you mean server.max_connections?" for the closest known key (in
// section first, then in any), or "" when nothing is close.
std::string DidYouMean(std::string_view section, std::string_view key) {
  const Field* best = nullptr;
  size_t best_d = SIZE_MAX;
  for (const auto& f : Fields()) {
    size_t d = Distance(key, f.key) + (f.section == section ? 0 : 1);
    if (d < best_d) {
      best_d = d;
      best = &f;
    }
  }
  if (best == nullptr || best_d > std::max<size_t>(2, key.size() / 4)) {
    return "";
  }
  return "; did you mean " + best->Name() + "?";
}

}  // namespace

std::string UnknownKeyHint(std::string_view section, std::string_view key) {
  return DidYouMean(section, key);
}

base::Result<Config> ParseToml(std::string_view text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return base::Status::Error(std::string(source) + ":" +
                               std::to_string(e.source().begin.line) + ": " +
                               std::string(e.description()));
  }
  Config config;
  for (const auto& [section_key, section_node] : root) {
    std::string section(section_key.str());
    const toml::table* table = section_node.as_table();
    if (!table) {
      return base::Status::Error(Where(source, section_node) + section +
                                 ": unknown setting (settings live in "
                                 "tables such as [server] or [smtp])");
    }
    bool known_section = false;
    for (const auto& f : Fields()) known_section |= f.section == section;
    if (!known_section) {
      std::string hint;
      size_t best = 3;
      for (const auto& f : Fields()) {
        if (size_t d = Distance(section, f.section); d < best) {
          best = d;
          hint = "; did you mean [" + std::string(f.section) + "]?";
        }
      }
      return base::Status::Error(Where(source, section_node) + "[" + section +
                                 "]: unknown table" + hint);
    }
    for (const auto& [key, node] : *table) {
      const Field* f = FindField(section, key.str());
      std::string name = section + "." + std::string(key.str());
      if (!f) {
        return base::Status::Error(Where(source, node) + name +
                                   ": unknown key" +
                                   DidYouMean(section, key.str()));
      }
      std::vector<std::string> values;
      base::Status s = NodeToStrings(*f, node, &values);
      if (s.ok()) s = SetFromStrings(&config, *f, values);
      if (!s.ok()) {
        return base::Status::Error(Where(source, node) + name + ": " +
                                   s.message());
      }
    }
  }
  return config;
}

base::Result<Config> LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::Status::Error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseToml(ss.str(), path);
}

base::Status Validate(const Config& c) {
  auto err = [](const std::string& m) { return base::Status::Error(m); };
  // The per-value checks of the settings table run again here: a Config
  // may be built in code rather than parsed.
  for (const auto& f : Fields()) {
    if (f.check == nullptr) continue;
    void* p = f.get(const_cast<Config&>(c));  // read only
    std::vector<std::string> values;
    if (f.kind == Kind::kStrings) {
      values = *static_cast<std::vector<std::string>*>(p);
    } else {
      values = {*static_cast<std::string*>(p)};
    }
    for (const auto& v : values) {
      if (auto s = f.check(v); !s.ok())
        return err(f.Name() + ": " + s.message());
    }
  }
  if (c.server.listen.empty()) {
    return err(
        "server.listen: at least one address is needed; e.g. "
        "[\"0.0.0.0:25\", \"[::]:25\"]");
  }
  if (capture::Enabled(c.capture) && c.capture.dir.empty()) {
    return err(
        "capture.dir: a directory is needed when capture.sample_every > 0 "
        "or capture.senders or capture.evidence is set");
  }
  if (c.server.memory_limit > 0 && c.server.memory_limit < (16 << 20)) {
    return err(
        "server.memory_limit: at least 16 MiB (16777216), 0 for no "
        "ceiling or -1 for one derived from the cgroup or the machine; the "
        "process alone needs a few MiB");
  }
  if (c.ledger.max_pending_bytes >= 0 && c.ledger.max_pending_bytes < 65536) {
    return err(
        "ledger.max_pending_bytes: at least 65536, or -1 for "
        "server.memory_limit / 8");
  }
  if (auto e = ledger::PostgresSupportError(c.ledger, HavePostgres());
      !e.empty()) {
    return err(e);
  }
  if (c.ledger.store == "postgresql" && c.ledger.max_db_bytes != 0) {
    return err(
        "ledger.max_db_bytes: not supported with store = \"postgresql\" "
        "(the database server's own quotas apply)");
  }
  if (c.traps.enabled) {
    if (c.traps.domains.empty()) {
      return err(
          "traps.domains: at least one trap domain is needed with "
          "traps.enabled");
    }
    if (auto ring = traps::KeyRing::Parse(c.traps.keys); !ring.ok()) {
      return err(ring.error());
    }
  }
  if (c.smtp.tls_cert.empty() != c.smtp.tls_key.empty()) {
    return err("smtp.tls_cert and smtp.tls_key must be given together");
  }
  if (!c.api.token.empty() && !c.api.token_file.empty()) {
    return err("api.token and api.token_file: set one of them, not both");
  }
  if (c.api.enabled && c.api.token.empty() && c.api.token_file.empty() &&
      api::EnvironmentToken().empty() &&
      !base::Endpoint::Parse(c.api.listen)->address.IsLoopback()) {
    return err("api.token: required because api.listen (" + c.api.listen +
               ") is not a loopback address");
  }
  const auto& t = c.tarpit;
  for (auto [name, r] : {std::pair{"greeting", t.greeting},
                         {"helo", t.helo},
                         {"mail", t.mail},
                         {"rcpt", t.rcpt},
                         {"data", t.data},
                         {"data_end", t.data_end},
                         {"reply", t.reply}}) {
    if (r.min > r.max) {
      return err(std::string("tarpit.") + name + "_min: " + Number(r.min) +
                 " is larger than tarpit." + name + "_max (" + Number(r.max) +
                 ")");
    }
  }
  // Checked whether or not the tarpit is on: turning it on later (a
  // reload, a flag) must not meet a contradiction then.
  if (t.mode != tarpit::Mode::kGiveUp &&
      t.hold_budget >= c.smtp.session_timeout) {
    return err("tarpit.hold_budget: " + Number(t.hold_budget) +
               " must be below smtp.session_timeout (" +
               Number(c.smtp.session_timeout) + ")");
  }
  if (c.smtp.idle_timeout > c.smtp.session_timeout) {
    return err("smtp.idle_timeout: " + Number(c.smtp.idle_timeout) +
               " is larger than smtp.session_timeout (" +
               Number(c.smtp.session_timeout) + "), so it never applies");
  }
  if (c.server.max_connections_per_ip > c.server.max_connections) {
    return err("server.max_connections_per_ip: " +
               std::to_string(c.server.max_connections_per_ip) +
               " is larger than server.max_connections (" +
               std::to_string(c.server.max_connections) + ")");
  }
  if (t.degrade_at > t.shed_at) {
    return err("tarpit.degrade_at: " + Number(t.degrade_at) +
               " is larger than tarpit.shed_at (" + Number(t.shed_at) + ")");
  }
  base::LogLevel level;
  if (!base::ParseLogLevel(c.log.level, &level)) {
    return err("log.level: \"" + c.log.level +
               "\" is not one of debug, info, warning, error");
  }
  return {};
}

namespace {

// A secret's TOML value with each string replaced by "<redacted>": a list
// keeps its length (how many keys are set is not the secret).
std::string Redacted(Config& c, const Field& f) {
  if (f.kind != Kind::kStrings) return "\"<redacted>\"";
  const auto& list = *static_cast<std::vector<std::string>*>(f.get(c));
  std::string out = "[";
  for (size_t i = 0; i < list.size(); ++i) {
    out += (i ? ", " : "") + std::string("\"<redacted>\"");
  }
  return out + "]";
}

}  // namespace

std::string EffectiveToml(const Config& config, bool non_default) {
  Config c = config;  // ValueToToml reads through a mutable accessor
  Config defaults;
  std::string out;
  std::string_view section;
  for (const auto& f : Fields()) {
    std::string value = ValueToToml(c, f);
    if (non_default && value == ValueToToml(defaults, f)) continue;
    if (f.secret && value != ValueToToml(defaults, f)) value = Redacted(c, f);
    if (f.section != section) {
      section = f.section;
      out += (out.empty() ? "[" : "\n[") + std::string(section) + "]\n";
    }
    out += std::string(f.key) + " = " + value + "\n";
  }
  return out;
}

std::vector<std::string> ChangedKeys(const Config& a, const Config& b) {
  Config x = a, y = b;
  std::vector<std::string> out;
  for (const auto& f : Fields()) {
    if (ValueToToml(x, f) != ValueToToml(y, f)) out.push_back(f.Name());
  }
  return out;
}

std::string DefaultsToml() {
  Config defaults;
  std::string out =
      "# spamsink configuration: every setting with its default.\n"
      "# Unknown keys are errors.\n";
  std::string_view section;
  for (const auto& f : Fields()) {
    if (f.section != section) {
      section = f.section;
      out += "\n[" + std::string(section) + "]\n";
    }
    out += "# ";
    out += f.doc;
    if (!f.choices.empty()) out += " One of: " + std::string(f.choices) + ".";
    out += "\n" + std::string(f.key) + " = " + ValueToToml(defaults, f) + "\n";
  }
  return out;
}

std::string ReferenceMarkdown() {
  Config defaults;
  std::string out =
      "# Configuration reference\n\n"
      "Generated from the settings table in `src/config/fields.cc` by "
      "`spamsink --print-reference`; do not edit by hand.\n\n"
      "spamsink reads one TOML file (`--config FILE`); every key can also be "
      "given on the command line as `--section-key VALUE`, which overrides "
      "the file. Unknown keys, wrong types and values out of range are "
      "errors that name the key and its line, and the server does not "
      "start. `spamsink --print-defaults` prints a complete file.\n";
  std::string_view section;
  for (const auto& f : Fields()) {
    if (f.section != section) {
      section = f.section;
      out += "\n## [" + std::string(section) + "]\n\n";
      out += "| key | type | default | flag | meaning |\n";
      out += "|---|---|---|---|---|\n";
    }
    const char* type = "";
    switch (f.kind) {
      case Kind::kEnum:
      case Kind::kString:
        type = "string";
        break;
      case Kind::kInt:
      case Kind::kInt64:
        type = "integer";
        break;
      case Kind::kDouble:
        type = "number";
        break;
      case Kind::kBool:
        type = "bool";
        break;
      case Kind::kStrings:
        type = "strings";
        break;
    }
    std::string doc(f.doc);
    if (!f.choices.empty()) {
      std::string choices(f.choices);
      for (size_t i; (i = choices.find('|')) != std::string::npos;) {
        choices.replace(i, 1, "`, `");
      }
      doc += " One of: `" + choices + "`.";
    }
    if (f.kind == Kind::kInt || f.kind == Kind::kInt64) {
      char buf[96];
      std::snprintf(buf, sizeof buf, " Range: %.0f to %.0f.", f.min, f.max);
      doc += buf;
    } else if (f.kind == Kind::kDouble) {
      char buf[96];
      std::snprintf(buf, sizeof buf, " Range: %g to %g.", f.min, f.max);
      doc += buf;
    }
    std::string flag = f.Flag();
    if (!f.alias.empty()) flag += ", " + std::string(f.alias);
    std::string def = ValueToToml(defaults, f);
    for (char& ch : def) {
      if (ch == '|') ch = '/';
    }
    out += "| `" + std::string(f.key) + "` | " + type + " | `" + def + "` | `" +
           flag + "` | " + doc + " |\n";
  }
  return out;
}

}  // namespace config
