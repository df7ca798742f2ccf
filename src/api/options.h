// The HTTP API's settings ([api] in the configuration): one struct with
// documented in-class defaults. Plain data; config/ parses and validates it.
#pragma once

#include <string>

namespace api {

struct Options {
  bool enabled = true;
  // "host:port" as read by base::Endpoint; a non-loopback address needs a
  // token.
  std::string listen = "127.0.0.1:8025";
  std::string token;  // bearer token; empty: no authentication
  // A file holding the token (see api/token.h); excludes token.
  std::string token_file;
};

}  // namespace api
