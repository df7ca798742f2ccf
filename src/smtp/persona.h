// Personas: the texts a real server would send, so that a sink cannot be
// told from that server at a glance. Each persona keeps its banner, EHLO
// keywords, reply texts, enhanced status codes and queue-id format
// consistent with the server it imitates.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace smtp {

// Every reply the engine can send. Templates may contain {host}, {id},
// {date}, {arg}, {client}, {helo}, {size} (expanded when sent).
enum class Reply : int {
  kGreeting,
  kHelo,
  kEhloFirst,  // first line of the EHLO reply (keywords follow)
  kMailOk,
  kRcptOk,
  kDataGo,
  kQueued,     // 250 after the message, {id} = queue id
  kBdatChunk,  // 250 after a non-final BDAT chunk, {size} = chunk octets
  kRset,
  kNoop,
  kQuit,
  kVrfy,
  kExpn,
  kHelp,
  kStartTls,
  kAuthChallengeUser,   // 334 for AUTH LOGIN, username
  kAuthChallengePass,   // 334 for AUTH LOGIN, password
  kAuthChallengePlain,  // 334 for AUTH PLAIN without an initial response
  kAuthFailed,
  kAuthNotEnabled,
  kTempfail,  // final_reply = tempfail
  kRejected,  // final_reply = reject
  kUnknown,   // unrecognised verb
  kNotImplemented,
  kSyntaxHelo,
  kSyntaxEhlo,
  kSyntaxMail,
  kSyntaxRcpt,
  kSyntaxData,
  kSyntaxBdat,
  kSyntaxNoArgs,  // {arg} = verb that takes no parameters
  kBadSender,
  kBadRecipient,
  kBadParameter,  // {arg} = parameter
  kNeedHelo,
  kNeedMail,
  kNeedRcpt,
  kNestedMail,
  kTooManyRecipients,
  kTooBig,           // message over the limit
  kSizeDeclined,     // MAIL SIZE= over the limit
  kLineTooLong,      // command line
  kTextLineTooLong,  // message text line
  kTooManyErrors,
  kTooManyCommands,
  kIdleTimeout,
  kSessionTimeout,
  kCapTotal,
  kCapPerIp,  // {client}
  kShutdown,
  kTlsNotAvailable,
  kBadSequenceTls,   // STARTTLS inside a transaction
  kGreetingRefused,  // 554 greeting (early talker); then only QUIT
  kOnlyQuit,         // any command after a 554 greeting
  kEmptyLine,        // an empty command line
  kForbidden,        // a header or HTTP verb as a command; then close
                     // (empty: answered as kUnknown)
  kEtrn,             // ETRN accepted; {arg} = the domain (empty: no ETRN)
  kEtrnSyntax,       // ETRN without a domain
  kEtrnBadDomain,    // ETRN with an invalid domain
  kEtrnInTransaction,
  kNoValidRcpts,   // DATA/BDAT after MAIL with no recipients
  kMailAfterBdat,  // MAIL while BDAT chunks are still coming
  kDataAfterBdat,  // DATA after a BDAT chunk
  kTlsActive,      // STARTTLS inside TLS
  kBadSize,        // SIZE= not a number
  kBadRet,         // RET= other than FULL or HDRS, or repeated
  kBadEnvid,       // ENVID= repeated or not xtext
  kBadNotify,      // NOTIFY= malformed
  kBadOrcpt,       // ORCPT= malformed
  kQueuedBdat,     // 250 after BDAT LAST, {size} = message octets
  // Rules::exim_envelope: a refused envelope argument; {text} = the reason
  // (up to a line's length: Exim quotes the whole argument).
  kEnvelopeError,
  kBdatNotAdvertised,  // Rules::bdat_needs_ehlo: BDAT after HELO or none
  kBdatNeedRcpt,       // BDAT without MAIL or RCPT (empty: kNeedMail/Rcpt)
  kTlsNotAdvertised,   // Rules::exim_sequence: STARTTLS without EHLO
  // Rules::exim_error_limits: the reply to an unknown command past the
  // limit, and the line after the error reply past the syntax/protocol
  // error limit (its code is replaced by that reply's).
  kTooManyUnknown,
  kTooManySynprot,
  kNulInCommand,  // Rules::exim_envelope: a NUL in a command line
  // Rules::exim_sequence: a command Exim wants alone sent with more input
  // behind it (then close), and the line after the 221 to a QUIT inside a
  // BDAT sequence (Exim's receive_msg() sees the end of input).
  kSyncError,
  kLostInBdat,
  // Rules::sendmail_sequence (session_sendmail.cc): a HELO/EHLO name with
  // a character Sendmail refuses or over 256 octets; VRFY/EXPN without an
  // argument, and before HELO (Debian's needvrfyhelo); their answers ({arg}
  // = the address, qualified with the host name if it has no '@'); VERB
  // (empty: unknown); BODY= other than 7BIT/8BITMIME ({arg} = the value).
  kBadHeloName,
  kArgRequired,
  kVrfyNeedHelo,
  kVrfyLocal,
  kVrfyRemote,
  kVerb,
  kBadBody,
  // Rules::sendmail_sequence: AUTH as Sendmail with Debian's Cyrus SASL
  // answers it (mechanisms DIGEST-MD5 CRAM-MD5, no users): no mechanism, one
  // not offered ({arg}, 32 octets at most), AUTH inside a transaction, the
  // client's "*", a response or initial response that is not base64 ({arg}),
  // and the challenge ({id} = the base64 text).
  kAuthNoMech,
  kAuthMechUnavailable,
  kAuthInTransaction,
  kAuthAborted,
  kAuthBadResponse,
  kAuthBadInitial,
  kAuthChallenge,
  // Rules::sendmail_sequence (session_sendmail_envelope.cc): a MAIL/RCPT
  // path prescan() refuses ({text}: the path and the reason, or the path
  // shortened), and DATA outside a transaction.
  kBadPath,
  kLongToken,
  kNeedMailData,
  // HELP <topic> (sendmail_help.h): the topic's lines ({id}: the first
  // line's text, the other lines and the last made by the caller), and a topic
  // Sendmail does not know ({arg}).
  kHelpTopic,
  kHelpUnknown,
  kUserUnknown,  // VRFY/EXPN/RCPT of a local name Sendmail does not know
  // Rules::sendmail_sequence: HELO/EHLO pipelined before PIPELINING was
  // offered, and every later command but HELO, EHLO, NOOP, RSET and QUIT
  // (ServerSession::SendmailPregreet).
  kPregreetHelo,
  kPregreetRejected,
  kCount
};

// Where the real servers differ in what they accept, not only in what they
// say. The defaults are the strict RFC 5321 reading; Postfix's smtpd (with
// Debian's defaults) is lenient where noted.
struct Rules {
  bool helo_required = true;          // MAIL before HELO/EHLO refused
  bool lf_ends_line = false;          // a bare LF ends a command line
  bool truncate_long_lines = false;   // over the limit: the first bytes are
                                      // the command, the rest is skipped
  bool lenient_addresses = false;     // bare local parts, quoted spaces,
                                      // no length limit below the line's
  bool whole_param_in_error = false;  // "Unsupported option: X=1", not "X"
  bool starttls_in_transaction = false;
  bool state_before_data_args = false;  // DATA: recipients checked first
  bool bdat_size_crlf = false;          // BDAT LAST reports the size after
                                        // bare LF -> CR LF and a final CR LF
  bool exim_bdat_total = false;         // BDAT LAST: Exim's "N byte chunk,
                                        // total M" (exim_size.h)
  bool eight_bit_only = false;          // BODY=BINARYMIME unsupported
  // A MAIL refused for its SIZE= leaves the size declared: a later MAIL
  // without SIZE= is refused too, until RSET, HELO/EHLO or a message end
  // (Postfix keeps msg_size until its mail_reset()).
  bool sticky_declared_size = false;
  // Exim: "MAIL FROM:" and "RCPT TO:" are the verbs (else unknown), ESMTP
  // options are taken off the end of MAIL after EHLO only (none on RCPT),
  // addresses are parsed and refused with Exim's texts (exim_envelope.h),
  // VRFY parses its address too.
  bool exim_envelope = false;
  // HELO/EHLO take one host name (letters, digits, '.', '-') or an address
  // literal, else kSyntaxHelo/kSyntaxEhlo.
  bool helo_checked = false;
  // BDAT without EHLO (CHUNKING not advertised) is refused at once and its
  // chunk is not read: the bytes that follow are commands.
  bool bdat_needs_ehlo = false;
  // Exim's order of things: QUIT takes no argument, ETRN needs no HELO,
  // STARTTLS needs EHLO (kTlsNotAdvertised), DATA without a transaction
  // asks for RCPT, and after a non-LAST BDAT only BDAT goes (MAIL and DATA
  // get kMailAfterBdat / kDataAfterBdat); a BDAT refused for a missing
  // RCPT neither opens a chunk sequence nor ends the transaction.
  bool exim_sequence = false;
  // Postfix's smtpd_soft_error_limit and smtpd_error_sleep_time: once the
  // client has made soft_error_limit errors, every reply line waits
  // error_sleep_ms first (Postfix sleeps before each line it writes and
  // flushes it at once; the caller schedules the waits, ReplyMark::sleeps).
  // 0: never.
  int soft_error_limit = 0;
  // Exim's smtp_max_unknown_commands and smtp_max_synprot_errors (3 each):
  // the 4th unknown command is answered kTooManyUnknown, the 4th syntax or
  // protocol error (500, 501, 503, 504 replies but a few, unknown commands
  // included) gets a "NNN-" reply and the kTooManySynprot line; either
  // closes. smtp.max_errors still applies.
  bool exim_error_limits = false;
  int error_sleep_ms = 0;
  // A message accepted forgives the errors and junk commands made so far
  // (Postfix resets its error and junk counts when a message is queued).
  bool forgive_errors = false;
  // Postfix's smtpd_junk_command_limit: HELO, EHLO, RSET, NOOP, VRFY and
  // ETRN are counted, and each one past max_junk_commands (after its own
  // reply) counts as an error instead of closing (Postfix: "junk_cmds++ >
  // limit" then error_count++; the hard error limit then closes with 421).
  bool junk_counts_errors = false;
  // Sendmail 8.17 (session_sendmail.cc): an unknown command or blank line
  // is echoed whole (sanitised, shortened as shortenstring(203)); BDAT is
  // unknown (no CHUNKING); HELO names checked as srvrsmtp.c does
  // (kBadHeloName); MAIL/RCPT echo only the path; SMTPUTF8 is an unknown
  // parameter; ETRN needs no HELO and is answered, not counted; VRFY and
  // EXPN answer kVrfyLocal/kVrfyRemote after HELO; RSET takes arguments;
  // SIZE is offered without a number (Debian sets no MaxMessageSize; the
  // sink's limit still applies) and AUTH whatever smtp.auth says (Debian's
  // Sendmail always offers it); AUTH is answered as SendmailAuth() says;
  // SEND, SAML, SOML and TURN echo the line in kNotImplemented; STARTTLS
  // checks its argument first.
  bool sendmail_sequence = false;
  // Seconds the banner waits (Debian's Sendmail: FEATURE(greet_pause), 1 s);
  // conn/ waits it where the tarpit does not hold the greeting already, and
  // notes a client that talks first as an early talker. 0: the banner
  // leaves at once.
  double greet_pause = 0;
};

struct Persona {
  std::string name;
  std::string host;  // what {host} expands to (Sendmail's AUTH challenges)
  Rules rules;
  std::array<std::string, int(Reply::kCount)> replies;
  // EHLO keywords after the first line; "SIZE" is followed by the limit.
  std::vector<std::string> ehlo_keywords;
  bool enhanced_codes = true;  // whether ENHANCEDSTATUSCODES is advertised
  enum class QueueId { kPostfix, kExim, kSendmail, kExchange } queue_id;
};

struct PersonaTexts {  // for the custom persona
  std::string banner, ehlo_greeting, ok, queued, bye;
};

// persona_sendmail.cc: the sendmail persona's Rules::sendmail_sequence
// texts and rules, over the generic ones (for MakePersona only).
void SetSendmailSequence(Persona* p);

// Builds a persona by name with {host} already expanded.
base::Result<Persona> MakePersona(std::string_view name,
                                  const std::string& hostname,
                                  const PersonaTexts& custom);

// Makes queue ids in a persona's format from a cheap per-session generator.
class QueueIdMaker {
 public:
  explicit QueueIdMaker(uint64_t seed) : state_(seed | 1) {}
  // Appends a fresh id to out; wall is the Unix time (encoded by some
  // formats, as the real servers do).
  void Append(Persona::QueueId format, double wall, std::string* out);
  // The generator's state, to park a session and resume it (Restore).
  uint64_t state() const { return state_; }
  void Restore(uint64_t state) { state_ = state; }
  // A number from the same generator (Sendmail's AUTH challenges).
  uint64_t Draw() { return Next(); }

 private:
  uint64_t Next();
  uint64_t state_;
};

// "Wed, 25 Nov 2026 22:50:00 +0000" (RFC 5322 date) for banners.
std::string Rfc5322Date(double wall);

}  // namespace smtp
