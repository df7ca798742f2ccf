// The API's bearer token: given in the configuration (api.token) or read
// from a file (api.token_file), so that it need not sit in the
// configuration or on the command line (visible in ps).
#pragma once

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

// The token the API checks: options.token_file's content when set, else
// options.token (possibly empty: no authentication).
base::Result<std::string> ResolveToken(const Options& options);

}  // namespace api
