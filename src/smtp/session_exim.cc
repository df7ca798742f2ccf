// Rules::exim_envelope: MAIL, RCPT and VRFY read as Exim 4.96 reads them
// (the parsing is in exim_envelope.cc), with its refusal texts. The state
// checks (HELO first, nested MAIL, MAIL before RCPT) are the table's.
#include "smtp/command.h"
#include "smtp/exim_envelope.h"
#include "smtp/server_session.h"

namespace smtp {
namespace {

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

std::string_view SkipBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  return s;
}

// What Exim shows for an address refused: the argument, then the reason.
std::string Quoted(std::string_view data, std::string_view why) {
  std::string t(data);
  t.append(": ");
  t.append(why);
  return t;
}

}  // namespace

// Exim's verbs are "MAIL FROM:" and "RCPT TO:" (one space): "MAIL" alone,
// "MAIL TO:" or "RCPT FROM:" are unrecognized commands. A verb ends at a
// space or at the end of the line (trailing white space removed): "EHLO"
// followed by a TAB or a CR is unknown too.
bool ServerSession::EximVerbComplete(std::string_view line,
                                     std::string_view verb) {
  line = SkipBlanks(line);
  while (!line.empty() &&
         (line.back() == ' ' || line.back() == '\t' || line.back() == '\r' ||
          line.back() == '\v' || line.back() == '\f')) {
    line.remove_suffix(1);
  }
  if (line.size() > verb.size() && line[verb.size()] != ' ') return false;
  if (EqualsIgnoreCase(verb, "MAIL")) {
    return StartsWithIgnoreCase(line, "MAIL FROM:");
  }
  if (EqualsIgnoreCase(verb, "RCPT")) {
    return StartsWithIgnoreCase(line, "RCPT TO:");
  }
  return true;
}

Action ServerSession::EximMail(std::string_view arg) {
  std::string_view data = SkipBlanks(arg.substr(5));  // after "FROM:"
  if (data.empty()) return Error(Reply::kSyntaxMail);
  ForgetEximRcptReplies();  // Exim's smtp_reset(), before the address
  uint64_t size = 0;
  if (ehlo_) {
    // Options come off the end until one Exim does not know; that one and
    // all before it stay and make the address malformed.
    EximOption o;
    for (std::string_view rest = data; EximTakeOption(&rest, &o);) {
      bool needs_value = EqualsIgnoreCase(o.name, "SIZE") ||
                         EqualsIgnoreCase(o.name, "BODY") ||
                         EqualsIgnoreCase(o.name, "AUTH") ||
                         EqualsIgnoreCase(o.name, "RET") ||
                         EqualsIgnoreCase(o.name, "ENVID");
      if (!needs_value && !EqualsIgnoreCase(o.name, "SMTPUTF8")) break;
      data = rest;
      if (needs_value && o.value.empty()) break;
      if (EqualsIgnoreCase(o.name, "SIZE")) {
        if (!ParseCount(o.value, &size)) size = 0;
      } else if (EqualsIgnoreCase(o.name, "BODY") &&
                 !EqualsIgnoreCase(o.value, "8BITMIME") &&
                 !EqualsIgnoreCase(o.value, "7BIT")) {
        return Error(Reply::kEnvelopeError, "invalid data for BODY");
      }
      // RET and ENVID without DSN advertised, AUTH unauthenticated:
      // taken off and ignored, as Exim does.
    }
  }
  if (size > uint64_t(opts_->max_message_size)) {
    return SizeDeclined();
  }
  EximAddress a = EximParseAddress(data, /*allow_null=*/true);
  if (!a.error.empty())
    return Error(Reply::kEnvelopeError, Quoted(data, a.error));
  if (!a.null && !a.has_domain) {
    return Error(Reply::kEnvelopeError,
                 Quoted(data, "sender address must contain a domain"), false);
  }
  return OpenTransaction(a.mailbox, data);
}

Action ServerSession::EximRcpt(std::string_view arg) {
  // No option is known without DSN advertised: any stays in the address.
  std::string_view data = SkipBlanks(arg.substr(3));  // after "TO:"
  if (data.empty()) return Error(Reply::kSyntaxRcpt);
  EximAddress a = EximParseAddress(data, /*allow_null=*/false);
  if (!a.error.empty())
    return Error(Reply::kEnvelopeError, Quoted(data, a.error));
  if (!a.has_domain && !EqualsIgnoreCase(a.mailbox, "postmaster")) {
    return Error(Reply::kEnvelopeError,
                 Quoted(data, "recipient address must contain a domain"),
                 false);
  }
  return AddRecipient(a.mailbox, data);
}

Action ServerSession::EximVrfy(std::string_view arg) {
  // Exim answers a VRFY it cannot parse without counting an error.
  EximAddress a = EximParseAddress(arg, /*allow_null=*/false);
  if (!a.error.empty()) return Error(Reply::kEnvelopeError, a.error, false);
  if (!a.has_domain && !EqualsIgnoreCase(a.mailbox, "postmaster")) {
    return Error(Reply::kEnvelopeError,
                 Quoted(arg, "recipient address must contain a domain"), false);
  }
  Append(Reply::kVrfy, arg);
  return Action::kContinue;
}

// Exim's smtp_in.c: an unknown command past smtp_max_unknown_commands is
// answered "500 Too many unrecognized commands" and the call dropped;
// otherwise it is a syntax error like the others, and once more than
// smtp_max_synprot_errors of them are made the error reply becomes
// "NNN-..." followed by "NNN Too many syntax or protocol errors" (a bad
// HELO/EHLO or a NUL past the limit is dropped after its plain reply).
Action ServerSession::EximError(Reply r, std::string_view arg, bool counted) {
  constexpr int kMaxUnknown = 3, kMaxSynprot = 3;
  const auto& text = opts_->persona.replies;
  auto drop = [&]() {
    ++facts_.protocol_errors;
    ++events_->limit_errors;
    ++events_->limits_hit;
    ++facts_.limits_hit;
    close_reason_ = CloseReason::kTooManyErrors;
    return Action::kClose;
  };
  bool unknown = text[int(r)] == text[int(Reply::kUnknown)];
  if (unknown && exim_unknown_++ >= kMaxUnknown) {
    Append(Reply::kTooManyUnknown);
    return drop();
  }
  if ((r == Reply::kNeedRcpt || r == Reply::kBdatNeedRcpt) && txn_.rcpts == 0 &&
      !exim_rcpt_mixed_ && !exim_rcpt_reply_.empty()) {
    // Every RCPT got the same refusal: Exim quotes it first.
    out_->bytes.append(
        "503-All RCPT commands were rejected with this error:\r\n503-");
    out_->bytes.append(exim_rcpt_reply_);
    out_->bytes.append("\r\n");
  }
  const size_t start = out_->bytes.size();
  Append(r, arg);
  std::string_view code = std::string_view(text[int(r)]).substr(0, 3);
  counted = counted && r != Reply::kNeedHelo &&
            (code == "500" || code == "501" || code == "503" || code == "504");
  if (!counted || ++exim_synprot_ <= kMaxSynprot) return Action::kContinue;
  if (r == Reply::kSyntaxHelo || r == Reply::kSyntaxEhlo ||
      r == Reply::kNulInCommand) {
    return drop();
  }
  std::string& out = out_->bytes;
  out[start + 3] = '-';
  size_t line = out.size();
  Append(Reply::kTooManySynprot);
  out.replace(line, 3, code);
  out_->marks.pop_back();
  out_->marks.back().end = uint32_t(out.size());
  return drop();
}

// Exim's smtp_read_command(check_sync): once a DATA or BDAT has been
// seen (pipe_connect_acceptable is off), a command that must be the last
// of its batch (HELO, EHLO, DATA, VRFY, EXPN, NOOP, ETRN, STARTTLS, any
// unknown command; MAIL, RCPT and RSET too when PIPELINING was not
// advertised) is refused with 554 when more input is waiting. BDAT, AUTH,
// QUIT and HELP never are. The flag is set by the DATA or BDAT itself,
// after its own check.
bool ServerSession::EximOutOfSync(std::string_view line, std::string_view verb,
                                  std::string_view arg) {
  bool sync = true;
  if (EqualsIgnoreCase(verb, "BDAT") || EqualsIgnoreCase(verb, "AUTH") ||
      EqualsIgnoreCase(verb, "QUIT") || EqualsIgnoreCase(verb, "HELP")) {
    sync = false;
  } else if (EqualsIgnoreCase(verb, "MAIL") || EqualsIgnoreCase(verb, "RCPT") ||
             EqualsIgnoreCase(verb, "RSET")) {
    sync = !ehlo_ || !EximVerbComplete(line, verb);
  }
  if (sync && input_pending_ && exim_synced_) return true;
  if ((EqualsIgnoreCase(verb, "DATA") && arg.empty()) ||
      (EqualsIgnoreCase(verb, "BDAT") && ehlo_ && !arg.empty() &&
       arg[0] >= '0' && arg[0] <= '9')) {
    exim_synced_ = true;
  }
  return false;
}

// Exim records the first reply line to each RCPT (smtp_printf() while
// rcpt_in_progress); the record ends at smtp_reset() (RSET, HELO/EHLO, MAIL,
// a message's end). Bounded by the reply's length (a quoted address is
// bounded by the command line).
void ServerSession::NoteEximRcptReply(size_t start) {
  std::string_view reply = std::string_view(out_->bytes).substr(start);
  reply = reply.substr(0, reply.find("\r\n"));
  if (reply.empty()) return;
  if (exim_rcpt_reply_.empty()) {
    exim_rcpt_reply_ = reply;
  } else if (reply != exim_rcpt_reply_) {
    exim_rcpt_mixed_ = true;
  }
}

void ServerSession::ForgetEximRcptReplies() {
  exim_rcpt_reply_.clear();
  exim_rcpt_reply_.shrink_to_fit();
  exim_rcpt_mixed_ = false;
}

}  // namespace smtp
