// The API's bearer token: given in the configuration (api.token) or read
// from a file (api.token_file), so that it need not sit in the
// configuration or on the command line (visible in ps).
#pragma once

#include <cstdlib>
#include <cstring>
#include <string>

#include "api/options.h"
#include "base/status.h"

namespace api {

// Reads the token from `path`: the first line, without surrounding blanks;
// any further lines must be blank. Refuses what is not a regular file, a
// file others may read or write or its group may write (chmod 0600, or
// 0640 root:<server user>), an empty token, a token over 4096 bytes, and
// characters outside visible ASCII (it travels in an HTTP header). Errors
// name api.token_file and the path. Called as the server's user.
base::Result<std::string> ReadTokenFile(const std::string& path);

// The environment variable that may hold the token (systemd's
// Environment=/EnvironmentFile=, a container's secret).
inline constexpr char kTokenVariable[] = "SPAMSINK_API_TOKEN";

// Takes SPAMSINK_API_TOKEN out of the environment, once, at the start of
// main (before any thread: it edits the environment). Its value is kept
// for ResolveToken; the variable is overwritten in the process's
// environment block (so /proc/PID/environ no longer shows it) and unset
// (no child inherits it). Never logs the value. Idempotent.
// Inline (header only): config/ checks it without linking api/.
inline std::string& EnvironmentTokenStorage() {
  static std::string token;
  return token;
}
inline void TakeTokenFromEnvironment() {
  char* v = getenv(kTokenVariable);
  if (v == nullptr) return;
  EnvironmentTokenStorage() = v;
  // The environment block is what /proc/PID/environ shows: blank the
  // value there before unsetting the name.
  std::memset(v, 0, std::strlen(v));
  unsetenv(kTokenVariable);
}
// The value taken (empty: none, or the variable was empty).
inline const std::string& EnvironmentToken() {
  return EnvironmentTokenStorage();
}

// The token the API checks, by precedence: api.token_file's content when
// set; else SPAMSINK_API_TOKEN (env_token) when non-empty; else api.token
// (possibly empty: no authentication). The environment's token obeys the
// file's rules (visible ASCII, at most 4096 bytes).
base::Result<std::string> ResolveToken(const Options& options,
                                       const std::string& env_token);
inline base::Result<std::string> ResolveToken(const Options& options) {
  return ResolveToken(options, EnvironmentToken());
}
// Where ResolveToken takes it from: "file", "environment", "inline" or
// "none" (the log's api_token=).
std::string TokenSource(const Options& options, const std::string& env_token);
inline std::string TokenSource(const Options& options) {
  return TokenSource(options, EnvironmentToken());
}

}  // namespace api
