#include "smtp/persona.h"

#include <cstdio>
#include <ctime>

namespace smtp {
namespace {

using R = Reply;

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s->find(from, pos)) != std::string::npos;
       pos += to.size()) {
    s->replace(pos, from.size(), to);
  }
}

// Texts shared by all personas unless overridden (Postfix's, the default).
void SetPostfix(Persona* p) {
  auto& r = p->replies;
  r[int(R::kGreeting)] = "220 {host} ESMTP Postfix (Debian/GNU)";
  r[int(R::kHelo)] = "250 {host}";
  r[int(R::kEhloFirst)] = "250-{host}";
  r[int(R::kMailOk)] = "250 2.1.0 Ok";
  r[int(R::kRcptOk)] = "250 2.1.5 Ok";
  r[int(R::kDataGo)] = "354 End data with <CR><LF>.<CR><LF>";
  r[int(R::kQueued)] = "250 2.0.0 Ok: queued as {id}";
  r[int(R::kBdatChunk)] = "250 2.0.0 Ok: {size} bytes";
  r[int(R::kRset)] = "250 2.0.0 Ok";
  r[int(R::kNoop)] = "250 2.0.0 Ok";
  r[int(R::kQuit)] = "221 2.0.0 Bye";
  r[int(R::kVrfy)] = "252 2.0.0 {arg}";
  // Postfix's smtpd has no EXPN or HELP: both are unknown commands.
  r[int(R::kExpn)] = "500 5.5.2 Error: command not recognized";
  r[int(R::kHelp)] = "500 5.5.2 Error: command not recognized";
  r[int(R::kStartTls)] = "220 2.0.0 Ready to start TLS";
  r[int(R::kAuthChallengeUser)] = "334 VXNlcm5hbWU6";
  r[int(R::kAuthChallengePass)] = "334 UGFzc3dvcmQ6";
  r[int(R::kAuthChallengePlain)] = "334 ";
  r[int(R::kAuthFailed)] =
      "535 5.7.8 Error: authentication failed: authentication failure";
  r[int(R::kAuthNotEnabled)] = "503 5.5.1 Error: authentication not enabled";
  r[int(R::kTempfail)] = "451 4.3.0 Error: queue file write error";
  r[int(R::kRejected)] = "554 5.7.1 Error: message content rejected";
  r[int(R::kUnknown)] = "500 5.5.2 Error: command not recognized";
  r[int(R::kNotImplemented)] = "502 5.5.1 Error: command not implemented";
  r[int(R::kSyntaxHelo)] = "501 Syntax: HELO hostname";
  r[int(R::kSyntaxEhlo)] = "501 Syntax: EHLO hostname";
  r[int(R::kSyntaxMail)] = "501 5.5.4 Syntax: MAIL FROM:<address>";
  r[int(R::kSyntaxRcpt)] = "501 5.5.4 Syntax: RCPT TO:<address>";
  r[int(R::kSyntaxData)] = "501 5.5.4 Syntax: DATA";
  // A malformed BDAT leaves the chunk's end unknown: Postfix hangs up (a
  // 521 closes the session).
  r[int(R::kSyntaxBdat)] = "521 5.5.4 Syntax: BDAT count [LAST]";
  r[int(R::kSyntaxNoArgs)] = "501 5.5.4 Syntax: {arg}";
  r[int(R::kBadSender)] = "501 5.1.7 Bad sender address syntax";
  r[int(R::kBadRecipient)] = "501 5.1.3 Bad recipient address syntax";
  r[int(R::kBadParameter)] = "555 5.5.4 Unsupported option: {arg}";
  r[int(R::kNeedHelo)] = "503 5.5.1 Error: send HELO/EHLO first";
  r[int(R::kNeedMail)] = "503 5.5.1 Error: need MAIL command";
  r[int(R::kNeedRcpt)] = "503 5.5.1 Error: need RCPT command";
  r[int(R::kNestedMail)] = "503 5.5.1 Error: nested MAIL command";
  r[int(R::kTooManyRecipients)] = "452 4.5.3 Error: too many recipients";
  r[int(R::kTooBig)] = "552 5.3.4 Error: message file too big";
  r[int(R::kSizeDeclined)] = "552 5.3.4 Message size exceeds fixed limit";
  r[int(R::kLineTooLong)] = "500 5.5.2 Error: line too long";
  r[int(R::kTextLineTooLong)] = "500 5.5.2 Error: message line too long";
  r[int(R::kTooManyErrors)] = "421 4.7.0 {host} Error: too many errors";
  r[int(R::kTooManyCommands)] = "421 4.7.0 {host} Error: too many commands";
  r[int(R::kIdleTimeout)] = "421 4.4.2 {host} Error: timeout exceeded";
  r[int(R::kSessionTimeout)] = "421 4.4.2 {host} Error: timeout exceeded";
  r[int(R::kCapTotal)] = "421 4.7.0 {host} Error: too many connections";
  r[int(R::kCapPerIp)] =
      "421 4.7.0 {host} Error: too many connections from {client}";
  r[int(R::kShutdown)] =
      "421 4.3.2 {host} Service shutting down, closing transmission channel";
  r[int(R::kTlsNotAvailable)] = "502 5.5.1 Error: command not implemented";
  r[int(R::kBadSequenceTls)] =
      "503 5.5.1 Error: STARTTLS not allowed during a mail transaction";
  // RFC 5321 3.1: a server may greet with 554, then answer 503 to all but
  // QUIT.
  r[int(R::kGreetingRefused)] = "554 5.5.1 {host} Error: protocol error";
  r[int(R::kOnlyQuit)] = "503 5.5.1 Error: protocol error";
  r[int(R::kEmptyLine)] = "500 5.5.2 Error: bad syntax";
  // smtpd_forbidden_commands (CONNECT GET POST, a non-letter first) and
  // header-like verbs ("Subject:"): a client that sends those is talking
  // to the wrong kind of server, or pipelining its message blindly.
  r[int(R::kForbidden)] = "221 2.7.0 Error: I can break rules, too. Goodbye.";
  // With no fast_flush_domains (relay_domains empty, Debian's default).
  r[int(R::kEtrn)] = "459 <{arg}>: service unavailable";
  r[int(R::kEtrnSyntax)] = "500 Syntax: ETRN domain";
  r[int(R::kEtrnBadDomain)] = "501 Error: invalid parameter syntax";
  r[int(R::kEtrnInTransaction)] = "503 Error: MAIL transaction in progress";
  r[int(R::kNoValidRcpts)] = "554 5.5.1 Error: no valid recipients";
  r[int(R::kMailAfterBdat)] = "503 5.5.1 Error: MAIL after BDAT";
  r[int(R::kDataAfterBdat)] = "503 5.5.1 Error: DATA after BDAT";
  r[int(R::kTlsActive)] = "554 5.5.1 Error: TLS already active";
  r[int(R::kBadSize)] = "501 5.5.4 Bad message size syntax";
  r[int(R::kBadRet)] = "501 5.5.4 Bad RET parameter syntax";
  r[int(R::kBadEnvid)] = "501 5.5.4 Bad ENVID parameter syntax";
  r[int(R::kBadNotify)] = "501 5.5.4 Error: Bad NOTIFY parameter syntax";
  r[int(R::kBadOrcpt)] = "501 5.5.4 Error: Bad ORCPT parameter syntax";
  r[int(R::kQueuedBdat)] = "250 2.0.0 Ok: {size} bytes queued as {id}";
  // Only with Rules::exim_envelope / bdat_needs_ehlo / exim_sequence (not
  // Postfix's).
  r[int(R::kEnvelopeError)] = "501 5.5.4 {text}";
  r[int(R::kBdatNotAdvertised)] = r[int(R::kNeedHelo)];
  r[int(R::kTlsNotAdvertised)] = r[int(R::kNeedHelo)];
  p->ehlo_keywords = {"PIPELINING",
                      "SIZE",
                      "VRFY",
                      "ETRN",
                      "STARTTLS",
                      "AUTH PLAIN LOGIN",
                      "ENHANCEDSTATUSCODES",
                      "8BITMIME",
                      "DSN",
                      "SMTPUTF8",
                      "CHUNKING"};
  p->queue_id = Persona::QueueId::kPostfix;
  // Postfix 3.7 with Debian's defaults: smtpd_helo_required = no,
  // strict_rfc821_envelopes = no, line_length_limit = 2048 (longer lines
  // are cut, not refused), LF alone ends a line.
  Rules& x = p->rules;
  x.helo_required = false;
  x.lf_ends_line = true;
  x.truncate_long_lines = true;
  x.lenient_addresses = true;
  x.whole_param_in_error = true;
  x.starttls_in_transaction = true;
  x.state_before_data_args = true;
  x.bdat_size_crlf = true;
  x.eight_bit_only = true;
  x.sticky_declared_size = true;
  // smtpd_soft_error_limit = 10, smtpd_error_sleep_time = 1s (the hard
  // limit, 20, is smtp.max_errors).
  x.soft_error_limit = 10;
  // Only with Rules::exim_error_limits (not Postfix's).
  r[int(R::kTooManyUnknown)] = r[int(R::kTooManyErrors)];
  r[int(R::kTooManySynprot)] = r[int(R::kTooManyErrors)];
  r[int(R::kNulInCommand)] = r[int(R::kUnknown)];
  r[int(R::kSyncError)] = r[int(R::kTooManyErrors)];
  r[int(R::kLostInBdat)] = r[int(R::kTooManyErrors)];
  x.error_sleep_ms = 1000;
  x.forgive_errors = true;
  x.junk_counts_errors = true;
}

// The replies the other personas have no text of their own for: answered
// as the nearest general reply, with the strict rules.
void SetGeneric(Persona* p) {
  auto& r = p->replies;
  p->rules = Rules{};
  r[int(R::kEmptyLine)] = r[int(R::kUnknown)];
  r[int(R::kForbidden)] = "";
  r[int(R::kEtrn)] = "";
  r[int(R::kEtrnSyntax)] = r[int(R::kUnknown)];
  r[int(R::kEtrnBadDomain)] = r[int(R::kUnknown)];
  r[int(R::kEtrnInTransaction)] = r[int(R::kUnknown)];
  r[int(R::kNoValidRcpts)] = r[int(R::kNeedRcpt)];
  r[int(R::kMailAfterBdat)] = r[int(R::kNestedMail)];
  r[int(R::kDataAfterBdat)] = r[int(R::kNeedRcpt)];
  r[int(R::kTlsActive)] = r[int(R::kTlsNotAvailable)];
  r[int(R::kBadSize)] = r[int(R::kSyntaxMail)];
  r[int(R::kBadRet)] = r[int(R::kBadParameter)];
  r[int(R::kBadEnvid)] = r[int(R::kBadParameter)];
  r[int(R::kBadNotify)] = r[int(R::kBadParameter)];
  r[int(R::kBadOrcpt)] = r[int(R::kBadParameter)];
  r[int(R::kQueuedBdat)] = r[int(R::kQueued)];
  r[int(R::kEnvelopeError)] = "501 {text}";
  r[int(R::kBdatNotAdvertised)] = r[int(R::kNeedHelo)];
  r[int(R::kBdatNeedRcpt)] = "";
  r[int(R::kTlsNotAdvertised)] = r[int(R::kTlsNotAvailable)];
}

void SetExim(Persona* p) {
  auto& r = p->replies;
  r[int(R::kGreeting)] = "220 {host} ESMTP Exim 4.96 {date}";
  r[int(R::kHelo)] = "250 {host} Hello {helo} [{client}]";
  r[int(R::kEhloFirst)] = "250-{host} Hello {helo} [{client}]";
  r[int(R::kMailOk)] = "250 OK";
  r[int(R::kRcptOk)] = "250 Accepted";
  r[int(R::kDataGo)] =
      "354 Enter message, ending with \".\" on a line by itself";
  r[int(R::kQueued)] = "250 OK id={id}";
  r[int(R::kBdatChunk)] = "250 {size} byte chunk received";
  r[int(R::kRset)] = "250 Reset OK";
  r[int(R::kNoop)] = "250 OK";
  r[int(R::kQuit)] = "221 {host} closing connection";
  r[int(R::kVrfy)] = "252 Administrative prohibition";
  r[int(R::kExpn)] = "550 Administrative prohibition";
  r[int(R::kHelp)] =
      "214-Commands supported:\n"
      "214 AUTH STARTTLS HELO EHLO MAIL RCPT DATA BDAT NOOP QUIT RSET HELP";
  r[int(R::kStartTls)] = "220 TLS go ahead";
  r[int(R::kAuthFailed)] = "535 Incorrect authentication data";
  r[int(R::kAuthNotEnabled)] = "503 AUTH command used when not advertised";
  r[int(R::kTempfail)] = "451 Temporary local problem - please try later";
  r[int(R::kRejected)] = "554 Message rejected";
  r[int(R::kUnknown)] = "500 unrecognized command";
  r[int(R::kNotImplemented)] = "500 unrecognized command";
  r[int(R::kSyntaxHelo)] = "501 Syntactically invalid HELO argument(s)";
  r[int(R::kSyntaxEhlo)] = "501 Syntactically invalid EHLO argument(s)";
  r[int(R::kSyntaxMail)] = "501 MAIL must have an address operand";
  r[int(R::kSyntaxRcpt)] = "501 RCPT must have an address operand";
  r[int(R::kSyntaxData)] = "501 DATA must have no arguments";
  r[int(R::kSyntaxBdat)] = "501 BDAT command must have a chunk size";
  r[int(R::kSyntaxNoArgs)] = "501 {arg} must have no arguments";
  r[int(R::kBadSender)] = "501 malformed address: failed to parse";
  r[int(R::kBadRecipient)] = "501 malformed address: failed to parse";
  r[int(R::kBadParameter)] = "501 {arg}: unrecognized option";
  r[int(R::kNeedHelo)] = "503 HELO or EHLO required";
  r[int(R::kNeedMail)] = "503 sender not yet given";
  r[int(R::kNeedRcpt)] = "503 valid RCPT command must precede DATA";
  r[int(R::kNestedMail)] = "503 sender already given";
  r[int(R::kTooManyRecipients)] = "452 too many recipients";
  r[int(R::kTooBig)] = "552 Message size exceeds maximum permitted";
  r[int(R::kSizeDeclined)] = "552 Message size exceeds maximum permitted";
  r[int(R::kLineTooLong)] = "500 Line too long";
  r[int(R::kTextLineTooLong)] = "500 message has lines too long for transport";
  r[int(R::kTooManyErrors)] = "421 {host} too many syntax or protocol errors";
  r[int(R::kTooManyCommands)] = "421 {host} too many nonmail commands";
  r[int(R::kCapTotal)] =
      "421 {host} Too many concurrent SMTP connections; please try again "
      "later.";
  r[int(R::kCapPerIp)] =
      "421 {host} Too many concurrent SMTP connections from this IP address; "
      "please try again later.";
  r[int(R::kShutdown)] = "421 {host} lost input connection";
  r[int(R::kTlsNotAvailable)] = "500 unrecognized command";
  r[int(R::kBadSequenceTls)] = "503 STARTTLS not allowed in a transaction";
  // Exim 4.96 with Debian's defaults (checked against the real daemon by
  // tests/differential: run.py exim).
  p->ehlo_keywords = {"SIZE",        "8BITMIME",         "PIPELINING",
                      "PIPECONNECT", "AUTH PLAIN LOGIN", "CHUNKING",
                      "STARTTLS",    "SMTPUTF8",         "HELP"};
  p->enhanced_codes = false;
  p->queue_id = Persona::QueueId::kExim;
  SetGeneric(p);
  r[int(R::kSyntaxData)] = "501 unexpected argument data";
  r[int(R::kSyntaxNoArgs)] = "501 unexpected argument data";
  r[int(R::kSyntaxBdat)] = "501 missing size for BDAT command";
  r[int(R::kEtrn)] = "458 Administrative prohibition";
  r[int(R::kEtrnSyntax)] = "458 Administrative prohibition";
  r[int(R::kEtrnBadDomain)] = "458 Administrative prohibition";
  r[int(R::kEtrnInTransaction)] =
      "503 ETRN is not permitted inside a transaction";
  r[int(R::kIdleTimeout)] =
      "421 {host}: SMTP command timeout - closing connection";
  r[int(R::kSessionTimeout)] = r[int(R::kIdleTimeout)];
  r[int(R::kBdatNotAdvertised)] =
      "503 BDAT command used when CHUNKING not advertised";
  r[int(R::kBdatNeedRcpt)] = "503 valid RCPT command must precede BDAT";
  r[int(R::kTlsNotAdvertised)] =
      "503 STARTTLS command used when not advertised";
  r[int(R::kTlsActive)] = r[int(R::kTlsNotAdvertised)];
  r[int(R::kMailAfterBdat)] = "503 only BDAT permissible after non-LAST BDAT";
  r[int(R::kDataAfterBdat)] = r[int(R::kMailAfterBdat)];
  // Exim's command buffer is 16 KiB: a longer line than spamsink's limit
  // is still only a command Exim does not know.
  r[int(R::kLineTooLong)] = r[int(R::kUnknown)];
  p->rules.exim_envelope = true;
  p->rules.helo_checked = true;
  p->rules.bdat_needs_ehlo = true;
  p->rules.exim_sequence = true;
  p->rules.exim_error_limits = true;
  p->rules.exim_bdat_total = true;
  r[int(R::kQueuedBdat)] =
      "250- {chunk} byte chunk, total {size}\n250 OK id={id}";
  r[int(R::kTooManyUnknown)] = "500 Too many unrecognized commands";
  r[int(R::kTooManySynprot)] = "500 Too many syntax or protocol errors";
  r[int(R::kNulInCommand)] =
      "501 NUL characters are not allowed in SMTP commands";
  r[int(R::kSyncError)] = "554 SMTP synchronization error";
  r[int(R::kLostInBdat)] = "421 Lost incoming connection";
  p->rules.lf_ends_line = true;  // command lines only; DATA keeps CR LF
  p->rules.starttls_in_transaction = true;
}

void SetSendmail(Persona* p) {
  auto& r = p->replies;
  // Debian 12's sendmail.mc (confSMTP_LOGIN_MSG) and 8.17's texts, as the
  // private real Sendmail showed them. Sendmail names the client by its
  // reverse DNS; spamsink does not look it up, so every client gets what
  // Sendmail says to one without a PTR record ("[addr](FAIL)", "Hello
  // [addr]").
  r[int(R::kGreeting)] =
      "220 {host} ESMTP Sendmail 8.17.1.9/8.17.1.9/Debian-2+deb12u2; {date}; "
      "(No UCE/UBE) logging access from: [{client}](FAIL)-[{client}]";
  r[int(R::kHelo)] = "250 {host} Hello [{client}], pleased to meet you";
  r[int(R::kEhloFirst)] = "250-{host} Hello [{client}], pleased to meet you";
  r[int(R::kMailOk)] = "250 2.1.0 {arg}... Sender ok";
  r[int(R::kRcptOk)] = "250 2.1.5 {arg}... Recipient ok";
  r[int(R::kDataGo)] = "354 End data with <CR><LF>.<CR><LF>";
  r[int(R::kQueued)] = "250 2.0.0 {id} Message accepted for delivery";
  r[int(R::kBdatChunk)] = "250 2.0.0 {size} bytes received";
  r[int(R::kRset)] = "250 2.0.0 Reset state";
  r[int(R::kNoop)] = "250 2.0.0 OK";
  r[int(R::kQuit)] = "221 2.0.0 {host} closing connection";
  r[int(R::kVrfy)] =
      "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try "
      "finger)";
  r[int(R::kExpn)] = "502 5.7.0 Sorry, we do not allow this operation";
  r[int(R::kHelp)] =
      "214-2.0.0 This is sendmail version 8.17.1.9\n"
      "214-2.0.0 Topics:\n"
      "214-2.0.0 \tHELO\tEHLO\tMAIL\tRCPT\tDATA\n"
      "214-2.0.0 \tRSET\tNOOP\tQUIT\tHELP\tVRFY\n"
      "214-2.0.0 \tEXPN\tVERB\tETRN\tDSN\tAUTH\n"
      "214-2.0.0 \tSTARTTLS\n"
      "214-2.0.0 For more info use \"HELP <topic>\".\n"
      "214-2.0.0 To report bugs in the implementation see\n"
      "214-2.0.0 \thttp://www.sendmail.org/email-addresses.html\n"
      "214-2.0.0 For local information send email to Postmaster at your "
      "site.\n"
      "214 2.0.0 End of HELP info";
  r[int(R::kStartTls)] = "220 2.0.0 Ready to start TLS";
  r[int(R::kAuthFailed)] = "535 5.7.0 authentication failed";
  r[int(R::kAuthNotEnabled)] = "503 5.3.3 AUTH mechanism not available";
  r[int(R::kTempfail)] =
      "451 4.3.0 Temporary system failure. Please try again later.";
  r[int(R::kRejected)] = "554 5.7.1 Message rejected";
  r[int(R::kUnknown)] = "500 5.5.1 Command unrecognized: \"{arg}\"";
  r[int(R::kNotImplemented)] = "502 5.5.1 Command not implemented";
  r[int(R::kSyntaxHelo)] = "501 5.0.0 HELO requires domain address";
  r[int(R::kSyntaxEhlo)] = "501 5.0.0 EHLO requires domain address";
  r[int(R::kSyntaxData)] = "501 5.5.4 Syntax error in parameters";
  r[int(R::kSyntaxBdat)] = "501 5.5.4 Syntax error in parameters";
  r[int(R::kSyntaxNoArgs)] = "501 5.5.4 Syntax error in parameters";
  r[int(R::kBadSender)] = "553 5.1.7 {arg}... Invalid sender address";
  r[int(R::kBadParameter)] = "555 5.5.4 {arg} parameter unrecognized";
  r[int(R::kNeedHelo)] = "503 5.0.0 Polite people say HELO first";
  r[int(R::kNeedMail)] = "503 5.0.0 Need MAIL before RCPT";
  r[int(R::kNeedRcpt)] = "503 5.0.0 Need RCPT (recipient)";
  r[int(R::kNestedMail)] = "503 5.5.0 Sender already specified";
  r[int(R::kTooManyRecipients)] = "452 4.5.3 Too many recipients";
  r[int(R::kTooBig)] = "552 5.2.3 Message exceeds maximum fixed size";
  r[int(R::kLineTooLong)] = "500 5.5.0 Line too long";
  r[int(R::kTextLineTooLong)] = "554 5.6.0 Message line too long";
  r[int(R::kTooManyErrors)] = "421 4.7.0 {host} Too many errors";
  r[int(R::kTooManyCommands)] = "421 4.7.0 {host} Too many commands";
  r[int(R::kIdleTimeout)] =
      "421 4.4.1 {host} Lost input channel from {client}: timeout";
  r[int(R::kSessionTimeout)] = r[int(R::kIdleTimeout)];
  r[int(R::kCapTotal)] = "421 4.3.2 Connection rate limit exceeded.";
  r[int(R::kCapPerIp)] = "421 4.3.2 Too many open connections.";
  r[int(R::kShutdown)] =
      "421 4.3.2 {host} Service not available, closing transmission channel";
  // Without a certificate (Debian's until sendmailconfig makes one)
  // Sendmail still offers STARTTLS in its code but cannot start TLS.
  r[int(R::kTlsNotAvailable)] = "454 4.3.3 TLS not available after start";
  r[int(R::kBadSequenceTls)] = "503 5.5.0 STARTTLS not allowed here";
  // srvrsmtp.c's order; STARTTLS (with a certificate) before DELIVERBY.
  p->ehlo_keywords = {"ENHANCEDSTATUSCODES",
                      "PIPELINING",
                      "EXPN",
                      "VERB",
                      "8BITMIME",
                      "SIZE",
                      "DSN",
                      "ETRN",
                      "AUTH DIGEST-MD5 CRAM-MD5",
                      "STARTTLS",
                      "DELIVERBY",
                      "HELP"};
  p->queue_id = Persona::QueueId::kSendmail;
  SetGeneric(p);
  // After SetGeneric: the texts and rules of session_sendmail.cc.
  SetSendmailSequence(p);
}

void SetExchange(Persona* p) {
  auto& r = p->replies;
  r[int(R::kGreeting)] =
      "220 {host} Microsoft ESMTP MAIL Service ready at {date}";
  r[int(R::kHelo)] = "250 {host} Hello [{client}]";
  r[int(R::kEhloFirst)] = "250-{host} Hello [{client}]";
  r[int(R::kMailOk)] = "250 2.1.0 Sender OK";
  r[int(R::kRcptOk)] = "250 2.1.5 Recipient OK";
  r[int(R::kDataGo)] = "354 Start mail input; end with <CRLF>.<CRLF>";
  r[int(R::kQueued)] =
      "250 2.6.0 <{id}@{host}> [InternalId={size}, Hostname={host}] Queued "
      "mail for delivery";
  r[int(R::kBdatChunk)] = "250 2.0.0 BDAT {size} bytes received";
  r[int(R::kRset)] = "250 2.0.0 Resetting";
  r[int(R::kNoop)] = "250 2.0.0 OK";
  r[int(R::kQuit)] = "221 2.0.0 Service closing transmission channel";
  r[int(R::kVrfy)] =
      "252 2.1.5 Cannot VRFY user, but will take message for this user";
  r[int(R::kExpn)] = "502 5.3.3 Command not implemented";
  r[int(R::kHelp)] =
      "214-This server supports the following commands:\n"
      "214 HELO EHLO STARTTLS RCPT DATA RSET MAIL QUIT HELP AUTH BDAT";
  r[int(R::kStartTls)] = "220 2.0.0 SMTP server ready";
  r[int(R::kAuthFailed)] = "535 5.7.3 Authentication unsuccessful";
  r[int(R::kAuthNotEnabled)] = "504 5.7.4 Unrecognized authentication type";
  r[int(R::kTempfail)] =
      "451 4.7.0 Temporary server error. Please try again later. PRX4";
  r[int(R::kRejected)] = "554 5.6.0 Invalid message content";
  r[int(R::kUnknown)] = "500 5.3.3 Unrecognized command '{arg}'";
  r[int(R::kNotImplemented)] = "502 5.3.3 Command not implemented";
  r[int(R::kSyntaxHelo)] = "501 5.5.4 Invalid domain name";
  r[int(R::kSyntaxEhlo)] = "501 5.5.4 Invalid domain name";
  r[int(R::kSyntaxMail)] = "501 5.5.4 Invalid arguments";
  r[int(R::kSyntaxRcpt)] = "501 5.5.4 Invalid arguments";
  r[int(R::kSyntaxData)] = "501 5.5.4 Invalid arguments";
  r[int(R::kSyntaxBdat)] = "501 5.5.4 Invalid arguments";
  r[int(R::kSyntaxNoArgs)] = "501 5.5.4 Invalid arguments";
  r[int(R::kBadSender)] = "501 5.1.7 Invalid address";
  r[int(R::kBadRecipient)] = "501 5.1.3 Invalid address";
  r[int(R::kBadParameter)] = "504 5.5.4 Unrecognized parameter {arg}";
  r[int(R::kNeedHelo)] = "503 5.5.2 Send hello first";
  r[int(R::kNeedMail)] = "503 5.5.2 Need mail command";
  r[int(R::kNeedRcpt)] = "503 5.5.2 Need rcpt command";
  r[int(R::kNestedMail)] = "503 5.5.2 Sender already specified";
  r[int(R::kTooManyRecipients)] = "452 4.5.3 Too many recipients";
  r[int(R::kTooBig)] =
      "552 5.3.4 Message size exceeds fixed maximum message size";
  r[int(R::kSizeDeclined)] = r[int(R::kTooBig)];
  r[int(R::kLineTooLong)] = "500 5.5.6 Line too long";
  r[int(R::kTextLineTooLong)] = "500 5.5.6 Line too long";
  r[int(R::kTooManyErrors)] =
      "421 4.7.0 Too many errors on this connection, closing transmission "
      "channel";
  r[int(R::kTooManyCommands)] = r[int(R::kTooManyErrors)];
  r[int(R::kIdleTimeout)] =
      "421 4.4.1 Connection timed out. Total session duration: {size}";
  r[int(R::kSessionTimeout)] = r[int(R::kIdleTimeout)];
  r[int(R::kCapTotal)] =
      "421 4.3.2 The maximum number of concurrent server connections has "
      "exceeded a limit, closing transmission channel";
  r[int(R::kCapPerIp)] =
      "421 4.3.2 The maximum number of concurrent connections has exceeded "
      "a limit, closing transmission channel";
  r[int(R::kShutdown)] = "421 4.3.2 Service not available";
  r[int(R::kTlsNotAvailable)] = "502 5.3.3 Command not implemented";
  r[int(R::kBadSequenceTls)] = "503 5.5.2 Send hello first";
  p->ehlo_keywords = {
      "SIZE",     "PIPELINING",      "DSN",      "ENHANCEDSTATUSCODES",
      "STARTTLS", "AUTH NTLM LOGIN", "8BITMIME", "BINARYMIME",
      "CHUNKING", "SMTPUTF8"};
  p->queue_id = Persona::QueueId::kExchange;
  SetGeneric(p);
}

}  // namespace

base::Result<Persona> MakePersona(std::string_view name,
                                  const std::string& hostname,
                                  const PersonaTexts& custom) {
  Persona p;
  p.name = name;
  p.host = hostname;
  SetPostfix(&p);
  if (name == "postfix") {
  } else if (name == "exim") {
    SetExim(&p);
  } else if (name == "sendmail") {
    SetSendmail(&p);
  } else if (name == "exchange") {
    SetExchange(&p);
  } else if (name == "custom") {
    auto& r = p.replies;
    r[int(R::kGreeting)] = "220 {host} " + custom.banner;
    r[int(R::kEhloFirst)] = "250-{host}" + (custom.ehlo_greeting.empty()
                                                ? std::string()
                                                : " " + custom.ehlo_greeting);
    for (R ok : {R::kMailOk, R::kRcptOk, R::kRset, R::kNoop}) {
      r[int(ok)] = "250 " + custom.ok;
    }
    std::string queued = custom.queued;
    ReplaceAll(&queued, "%s", "{id}");
    r[int(R::kQueued)] = "250 " + queued;
    r[int(R::kQuit)] = "221 " + custom.bye;
  } else {
    return base::Status::Error("unknown persona '" + std::string(name) + "'");
  }
  for (auto& text : p.replies) ReplaceAll(&text, "{host}", hostname);
  return p;
}

uint64_t QueueIdMaker::Next() {
  // xorshift64*: cheap, no syscall, plenty for ids that only need to look
  // plausible and differ.
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  return state_ * 0x2545F4914F6CDD1Dull;
}

void QueueIdMaker::Append(Persona::QueueId format, double wall,
                          std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  static constexpr char kB62[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint64_t r = Next();
  switch (format) {
    case Persona::QueueId::kPostfix: {
      // Short ids: microseconds and inode in hex, 10 or 11 characters.
      int n = 10 + int(r & 1);
      r >>= 1;
      for (int i = 0; i < n; ++i, r >>= 4) out->push_back(kHex[r & 15]);
      break;
    }
    case Persona::QueueId::kExim: {
      // 4.96: time (6 base62) - pid (6 base62) - fraction (2 base62).
      uint64_t t = uint64_t(wall);
      char buf[6];
      for (int i = 5; i >= 0; --i, t /= 62) buf[i] = kB62[t % 62];
      out->append(buf, 6);
      out->push_back('-');
      out->append("000");
      for (int i = 0; i < 3; ++i, r /= 62) out->push_back(kB62[r % 62]);
      out->push_back('-');
      for (int i = 0; i < 2; ++i, r /= 62) out->push_back(kB62[r % 62]);
      break;
    }
    case Persona::QueueId::kSendmail: {
      // YMDhmmss + sequence + pid, in sendmail's base-60 alphabet.
      std::time_t t = std::time_t(wall);
      std::tm tm;
      gmtime_r(&t, &tm);
      out->push_back(kB62[tm.tm_year % 60]);
      out->push_back(kB62[tm.tm_mon]);
      out->push_back(kB62[tm.tm_mday]);
      out->push_back(kB62[tm.tm_hour]);
      out->push_back(kB62[tm.tm_min]);
      out->push_back(kB62[tm.tm_sec]);
      out->push_back(kB62[r % 60]);
      r /= 60;
      out->push_back(kB62[r % 60]);
      r /= 60;
      char pid[8];
      std::snprintf(pid, sizeof pid, "%06u", unsigned(r % 1000000));
      out->append(pid);
      break;
    }
    case Persona::QueueId::kExchange: {
      // A GUID-shaped message id.
      uint64_t r2 = Next();
      char buf[40];
      std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx",
                    unsigned(r >> 32), unsigned(r >> 16) & 0xffff,
                    unsigned(r) & 0xffff, unsigned(r2 >> 48),
                    static_cast<unsigned long long>(r2 & 0xffffffffffffull));
      out->append(buf);
      break;
    }
  }
}

std::string Rfc5322Date(double wall) {
  std::time_t t = std::time_t(wall);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

}  // namespace smtp
