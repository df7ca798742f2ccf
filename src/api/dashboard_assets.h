// The console's static files, compiled into the binary at build time
// (src/api/assets/embed.cmake writes dashboard_assets.cc): no run-time
// build step, no CDN.
#pragma once

#include <cstddef>
#include <string_view>

namespace api {

struct EmbeddedAsset {
  std::string_view name;  // "app.js"
  std::string_view data;
};

// The asset called name, or null.
const EmbeddedAsset* FindAsset(std::string_view name);

}  // namespace api
