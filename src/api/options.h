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
  // Abuse bounds: requests are served by `threads` workers; connections
  // beyond them wait in a queue of max_queued, beyond which they get an
  // immediate 503. One client address holds at most
  // max_connections_per_ip workers (more: 503). A connection that has not
  // sent a whole request header within header_timeout seconds (from its
  // start or the end of its previous response) is closed, so slow clients
  // cannot keep the workers from /healthz.
  int threads = 16;
  int max_queued = 64;
  int max_connections_per_ip = 8;
  double header_timeout = 10;
  // HTTPS: a PEM certificate (chain) and its private key; both set, the API
  // speaks TLS only (cpp-httplib's SSLServer over OpenSSL). Read at start
  // (restart to rotate).
  std::string tls_cert;
  std::string tls_key;
};

}  // namespace api
