// The one configuration struct. Every setting is named once, next to its
// default; config.cc holds the table that maps each field to its TOML key,
// its documentation and its command-line flag, from which --print-defaults
// and docs/CONFIGURATION.md are generated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/endpoint.h"  // server.listen and api.listen entries
#include "base/status.h"
#include "tarpit/options.h"

namespace config {

struct ServerConfig {
  // Behaviour.
  // Addresses to listen on, "host:port" or "[v6]:port".
  std::vector<std::string> listen = {"127.0.0.1:25", "[::1]:25"};
  // Name used in the banner and replies; empty means the system host name.
  std::string hostname;
  // Drop privileges to this user after binding (when started as root).
  std::string user;
  // Networks allowed to send a PROXY v1/v2 header; connections from them
  // must send one. Empty: PROXY protocol off.
  std::vector<std::string> proxy_trusted;
  // Seconds a trusted peer has to send its PROXY header.
  double proxy_timeout = 5;
  // Performance.
  int threads = 0;  // I/O threads; 0 = one per core
  int backlog = 4096;
  int max_connections = 20000;
  int max_connections_per_ip = 50;
  int fd_reserve = 32;  // descriptors kept free; accept pauses below it
};

struct SmtpConfig {
  // "postfix", "exim", "sendmail", "exchange" or "custom".
  std::string persona = "postfix";
  // Final reply to a message: "accept" (250), "tempfail" (451), "reject"
  // (554).
  std::string final_reply = "accept";
  int max_line_length = 512;        // command line, CRLF included
  int max_text_line_length = 1000;  // DATA line, CRLF included; 0 = no limit
  int max_recipients = 100;
  int64_t max_message_size = 10240000;  // bytes; advertised in SIZE
  int max_commands = 10000;             // per session
  int max_junk_commands = 100;          // NOOP/VRFY/EXPN/HELP/RSET per session
  int max_errors = 20;                  // error replies before 421 and close
  double session_timeout = 600;         // seconds, whole session
  double idle_timeout = 300;            // seconds without a complete command
  bool auth = false;                    // advertise AUTH (always answered 535)
  bool starttls = true;                 // offer STARTTLS
  std::string tls_cert;                 // PEM; empty: self-signed at start-up
  std::string tls_key;
  // Texts for the "custom" persona (ignored by the others).
  std::string custom_banner = "ESMTP";
  std::string custom_ehlo_greeting = "";
  std::string custom_ok = "Ok";
  std::string custom_queued = "Ok: queued as %s";
  std::string custom_bye = "Bye";
};

struct LedgerConfig {
  bool enabled = true;
  std::string db_path = "spamsink.db";    // SQLite file; relative to cwd
  double flush_interval = 1;              // seconds between batch commits
  double retention_days = 90;             // expire records not seen for this
  int64_t max_pending_bytes = 256 << 20;  // memory bound while store fails
};

struct ApiConfig {
  bool enabled = true;
  std::string listen = "127.0.0.1:8025";
  std::string token;  // bearer token; required for a non-loopback listen
};

struct LogConfig {
  std::string level = "info";  // debug, info, warning, error
  bool sessions = true;        // one summary line per session
};

struct Config {
  ServerConfig server;
  SmtpConfig smtp;
  LedgerConfig ledger;
  ApiConfig api;
  LogConfig log;
  tarpit::Options tarpit;  // [tarpit]; defaults in tarpit/options.h
};

// Parses TOML text. Unknown keys, wrong types and bad values are errors
// naming the key and its line ("config.toml:12: smtp.max_recipients: ...").
base::Result<Config> ParseToml(std::string_view text, std::string_view source);
base::Result<Config> LoadFile(const std::string& path);
// Checks cross-field rules (e.g. the API token) on a complete Config.
base::Status Validate(const Config& config);
// The defaults as a commented TOML file (spamsink --print-defaults).
std::string DefaultsToml();
// The configuration reference in Markdown (docs/CONFIGURATION.md).
std::string ReferenceMarkdown();

}  // namespace config
