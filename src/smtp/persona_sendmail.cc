// The sendmail persona's texts and rules for Rules::sendmail_sequence
// (session_sendmail.cc, session_sendmail_envelope.cc), set by MakePersona
// on top of the generic ones; kept apart to keep persona.cc short.
#include "smtp/persona.h"

namespace smtp {

void SetSendmailSequence(Persona* p) {
  using R = Reply;
  auto& r = p->replies;
  r[int(R::kUnknown)] = "500 5.5.1 Command unrecognized: \"{text}\"";
  r[int(R::kEmptyLine)] = r[int(R::kUnknown)];
  r[int(R::kSyntaxNoArgs)] = "501 5.5.2 Syntax error (no parameters allowed)";
  r[int(R::kEtrn)] = "250 2.0.0 Queuing for node {arg} started";
  r[int(R::kEtrnSyntax)] = "500 5.5.2 Parameter required";
  r[int(R::kBadRet)] = "501 5.5.2 Bad argument \"{arg}\" to RET";
  r[int(R::kBadHeloName)] = "501 5.0.0 Invalid domain name";
  r[int(R::kArgRequired)] = "501 5.5.2 Argument required";
  r[int(R::kVrfyNeedHelo)] =
      "503 5.0.0 I demand that you introduce yourself first";
  r[int(R::kVrfyLocal)] = "250 2.1.5 {arg}";
  r[int(R::kVrfyRemote)] = "252 2.1.5 <{arg}>";
  r[int(R::kUserUnknown)] = "550 5.1.1 {arg}... User unknown";
  r[int(R::kPregreetHelo)] = "554 5.5.0 SMTP protocol error";
  r[int(R::kPregreetRejected)] = "550 5.0.0 Command rejected";
  r[int(R::kVerb)] = "250 2.0.0 Verbose mode";
  r[int(R::kBadBody)] = "501 5.5.4 Unknown BODY type {arg}";
  r[int(R::kNotImplemented)] = "502 5.5.1 Command not implemented: \"{text}\"";
  r[int(R::kAuthNoMech)] = "501 5.5.2 AUTH mechanism must be specified";
  r[int(R::kAuthMechUnavailable)] =
      "504 5.3.3 AUTH mechanism {arg} not available";
  r[int(R::kAuthInTransaction)] =
      "503 5.5.0 AUTH not permitted during a mail transaction";
  r[int(R::kAuthAborted)] = "501 5.0.0 AUTH aborted";
  r[int(R::kAuthBadResponse)] = "501 5.5.4 cannot decode AUTH parameter {arg}";
  r[int(R::kAuthBadInitial)] = "501 5.5.4 cannot BASE64 decode '{arg}'";
  r[int(R::kAuthChallenge)] = "334 {id}";
  r[int(R::kSyntaxMail)] =
      "501 5.5.2 Syntax error in parameters scanning \"{arg}\"";
  r[int(R::kSyntaxRcpt)] = r[int(R::kSyntaxMail)];
  r[int(R::kBadRecipient)] = "553 5.0.0 {arg}... User address required";
  r[int(R::kBadPath)] = "553 5.0.0 {text}";
  r[int(R::kLongToken)] = "553 5.1.0 {text}... prescan: token too long";
  r[int(R::kNeedMailData)] = "503 5.0.0 Need MAIL command";
  r[int(R::kSyncError)] = "554 5.5.0 SMTP protocol error";
  // A command line over the limit: Sendmail hangs up (ServerSession::Error
  // closes after a 4xx kLineTooLong).
  r[int(R::kLineTooLong)] =
      "421 4.7.0 {host} Command too long, possible attack [{client}]";
  // At its command timeout Sendmail closes without a word (the text stays
  // for smtp.session_timeout, the sink's own limit).
  r[int(R::kIdleTimeout)] = "";
  r[int(R::kHelpTopic)] = "214-2.0.0 {id}";
  r[int(R::kHelpUnknown)] = "504 5.3.0 HELP topic \"{arg}\" unknown";
  r[int(R::kBadNotify)] = "501 5.5.4 Bad argument \"{arg}\"  to NOTIFY";
  r[int(R::kBadOrcpt)] = "501 5.5.4 Syntax error in ORCPT parameter value";
  // No MaxMessageSize (Debian's): only a SIZE= over the free disk space is
  // refused, with this text; the sink's limit stands in for the disk.
  r[int(R::kSizeDeclined)] =
      "452 4.4.5 Insufficient disk space; try again later";
  p->rules.sendmail_sequence = true;
  p->rules.greet_pause = 1.0;
  p->rules.eight_bit_only = true;  // BODY=BINARYMIME is unknown
  // A bare LF ends a command line (sfgets()); the message text still ends
  // only at CR LF . CR LF (docs/PERSONAS.md: kept for safety).
  p->rules.lf_ends_line = true;
}

}  // namespace smtp
