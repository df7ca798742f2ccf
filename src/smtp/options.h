// The SMTP engine's settings ([smtp] in the configuration): one struct with
// documented in-class defaults. Plain data; config/ parses and validates it
// (persona and final_reply against their choices), MakeSessionOptions turns
// it into what a session reads.
#pragma once

#include <cstdint>
#include <string>

namespace smtp {

struct Options {
  // Behaviour.
  // "postfix", "exim", "sendmail", "exchange" or "custom".
  std::string persona = "postfix";
  // Final reply to a message: "accept" (250), "tempfail" (451), "reject"
  // (554).
  std::string final_reply = "accept";
  // Postfix's line_length_limit: longer command lines are cut there (the
  // postfix persona) or refused (the others).
  int max_line_length = 2048;    // command line, CRLF included
  int max_text_line_length = 0;  // DATA line, CRLF included; 0 = no limit
  int max_recipients = 1000;     // Postfix: smtpd_recipient_limit
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

}  // namespace smtp
