#include "config/field_macros.h"

namespace config {

void AppendApiFields(std::vector<Field>* out) {
  std::vector<Field> f = {
      SPAMSINK_FIELD(api, enabled, kBool, "Serve the HTTP API."),
      SPAMSINK_FIELD(api, listen, kString,
                     "HTTP API address, \"host:port\"; a non-loopback address "
                     "requires a token."),
      SPAMSINK_FIELD(api, token, kString,
                     "Bearer token required by the API when set. Prefer "
                     "api.token_file: this one shows in `spamsink config`."),
      SPAMSINK_FIELD(api, token_file, kString,
                     "File holding the bearer token (its first line), read "
                     "at start and on SIGHUP as the server's user; refused "
                     "when others may read it or the group may write it. "
                     "Not with api.token."),
  };
  SetField(&f, "api.listen", [](Field& x) { x.check = CheckEndpoint; });
  out->insert(out->end(), f.begin(), f.end());
}

}  // namespace config
