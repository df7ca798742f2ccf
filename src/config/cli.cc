#include "config/cli.h"

#include "config/fields.h"

namespace config {

void AddFlags(CLI::App* app, Overrides* overrides) {
  for (const auto& f : Fields()) {
    std::string names = f.Flag();
    if (!f.alias.empty()) names += "," + std::string(f.alias);
    auto* target = &(*overrides)[f.Name()];
    std::string doc(f.doc);
    auto* opt = app->add_option(names, *target, doc)->group("Settings");
    if (f.kind == Kind::kStrings) {
      // Repeat the flag for several values: --listen A --listen B.
      opt->expected(1);
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
      opt->type_name("VALUE");
    } else if (f.kind == Kind::kBool) {
      // Bare "--tarpit-enabled" means true; "--tarpit-enabled false" too.
      opt->expected(0, 1);
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
      opt->type_name("[BOOL]");
    } else {
      opt->expected(1);
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
      opt->type_name(f.kind == Kind::kString ? "TEXT" : "VALUE");
    }
  }
}

base::Status ApplyOverrides(const Overrides& overrides, Config* config) {
  for (const auto& f : Fields()) {
    auto it = overrides.find(f.Name());
    if (it == overrides.end() || it->second.empty()) continue;
    std::vector<std::string> values = it->second;
    if (f.kind != Kind::kStrings) values = {values.back()};
    // A bare boolean flag ("--tarpit-enabled") arrives without a value.
    if (f.kind == Kind::kBool && values[0].empty()) values[0] = "true";
    base::Status s = SetFromStrings(config, f, values);
    if (!s.ok()) {
      // Name the flag as users type it and the key it sets.
      std::string flag = f.alias.empty() ? f.Flag() : std::string(f.alias);
      return base::Status::Error(flag + " (" + f.Name() + "): " + s.message());
    }
  }
  return {};
}

void AddConfigOptions(CLI::App* app, CommandLine* line) {
  app->add_option("-c,--config", line->file, "TOML configuration file")
      ->type_name("FILE");
  AddFlags(app, &line->overrides);
}

base::Result<Config> Load(const std::vector<const CommandLine*>& lines) {
  std::string file;
  for (const auto* l : lines) {
    if (!l->file.empty()) file = l->file;
  }
  Config config;
  if (!file.empty()) {
    auto loaded = LoadFile(file);
    if (!loaded.ok()) return loaded.status();
    config = std::move(loaded).value();
  }
  for (const auto* l : lines) {
    if (auto s = ApplyOverrides(l->overrides, &config); !s.ok()) return s;
  }
  if (auto s = Validate(config); !s.ok()) return s;
  return config;
}

}  // namespace config
