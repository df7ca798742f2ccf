#include "config/field_macros.h"

namespace config {

// The [api] table: where it listens, its token, and its abuse bounds.
void AppendApiFields(std::vector<Field>* out) {
  std::vector<Field> f = {
      SPAMSINK_FIELD(api, enabled, kBool, "Serve the HTTP API."),
      SPAMSINK_FIELD(api, listen, kString,
                     "HTTP API address, \"host:port\"; a non-loopback address "
                     "requires a token."),
      SPAMSINK_FIELD(api, token, kString,
                     "Bearer token required by the API when set. Prefer "
                     "api.token_file: this one sits in the config file "
                     "(`spamsink config` prints it as <redacted>)."),
      SPAMSINK_FIELD(api, token_file, kString,
                     "File holding the bearer token (its first line), read "
                     "at start and on SIGHUP as the server's user; refused "
                     "when others may read it or the group may write it. "
                     "Not with api.token."),
      SPAMSINK_FIELD(api, tls_cert, kString,
                     "PEM certificate (chain) for HTTPS: with api.tls_key "
                     "the API speaks TLS only (1.2 at least: OpenSSL 3's "
                     "default security level). Read at start "
                     "as the server's user; restart to rotate."),
      SPAMSINK_FIELD(api, tls_key, kString,
                     "PEM private key of api.tls_cert (keep it 0600, or "
                     "0640 root:<server group>)."),
      SPAMSINK_FIELD(api, threads, kInt, "Workers serving API requests."),
      SPAMSINK_FIELD(api, max_queued, kInt,
                     "API connections waiting for a worker at most; more "
                     "get an immediate 503."),
      SPAMSINK_FIELD(api, max_connections_per_ip, kInt,
                     "API connections one client address may have in the "
                     "workers' hands; more get an immediate 503."),
      SPAMSINK_FIELD(api, header_timeout, kDouble,
                     "Seconds an API connection has to send a whole request "
                     "header (from its start or its previous response); "
                     "then it is closed (slowloris)."),
  };
  SetField(&f, "api.listen", [](Field& x) { x.check = CheckEndpoint; });
  SetField(&f, "api.token", [](Field& x) { x.secret = true; });
  SetRange(&f, "api.threads", 1, 256);
  SetRange(&f, "api.max_queued", 0, 100000);
  SetRange(&f, "api.max_connections_per_ip", 1, 100000);
  SetRange(&f, "api.header_timeout", 0.1, 3600);
  out->insert(out->end(), f.begin(), f.end());
}

}  // namespace config
