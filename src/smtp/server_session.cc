// The engine's frame: options, the command table, framing of command lines,
// dispatch, errors and limits. The verbs are in session_commands.cc
// (HELO/EHLO, MAIL, RCPT, RSET, NOOP, QUIT, VRFY, EXPN, HELP, STARTTLS) and
// session_data.cc (DATA, BDAT, AUTH).
#include "smtp/server_session.h"

#include <algorithm>

#include "base/log.h"
#include "smtp/command.h"

namespace smtp {
namespace {

// Text from the client shown in a reply: bounded and printable.
void AppendSanitized(std::string* out, std::string_view s, size_t max = 64) {
  if (s.size() > max) s = s.substr(0, max);
  for (unsigned char c : s) out->push_back(c < ' ' || c == 0x7f ? '?' : c);
}

// Postfix's smtpd_forbidden_commands (CONNECT GET POST, and anything not
// starting with a letter) and is_header(): a verb like "Subject:".
bool IsForbiddenVerb(std::string_view verb) {
  unsigned char c = verb[0];
  if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return true;
  if (EqualsIgnoreCase(verb, "CONNECT") || EqualsIgnoreCase(verb, "GET") ||
      EqualsIgnoreCase(verb, "POST")) {
    return true;
  }
  if (verb.size() < 2 || verb.back() != ':') return false;
  for (unsigned char h : verb.substr(0, verb.size() - 1)) {
    if (h <= ' ' || h >= 0x7f || h == ':') return false;
  }
  return true;
}

}  // namespace

// One row per verb (OpenSMTPD's smtp_check_* / smtp_proceed_*): whether it
// is a "junk" command (counted against max_junk_commands), whether it is an
// AUTH attempt (evidence, counted before any check), the usage shown when
// it is given an argument it does not take, the check that says whether it
// may proceed now, and the handler that carries it out (and parses its
// argument).
struct ServerSession::Command {
  std::string_view verb;
  bool junk;
  bool auth;
  std::string_view usage;
  Reply (ServerSession::*check)(std::string_view) const;
  Action (ServerSession::*proceed)(std::string_view, double);
};

using S = ServerSession;
const S::Command S::kCommands[] = {
    {"EHLO", false, false, "", &S::CheckEhlo, &S::Ehlo},
    {"HELO", false, false, "", &S::CheckHelo, &S::Helo},
    {"MAIL", false, false, "", &S::CheckMail, &S::Mail},
    {"RCPT", false, false, "", &S::CheckRcpt, &S::Rcpt},
    {"DATA", false, false, "", &S::CheckData, &S::Data},
    // BDAT reads its chunk whatever the verdict: checked after the bytes.
    {"BDAT", false, false, "", &S::CheckNothing, &S::Bdat},
    {"RSET", true, false, "RSET", &S::CheckNoArgs, &S::Rset},
    {"NOOP", true, false, "", &S::CheckNothing, &S::Noop},
    {"QUIT", false, false, "", &S::CheckQuit, &S::Quit},
    {"VRFY", true, false, "VRFY address [SMTPUTF8]", &S::CheckVrfy, &S::Vrfy},
    {"EXPN", true, false, "", &S::CheckExpn, &S::Expn},
    {"HELP", true, false, "", &S::CheckHelp, &S::Help},
    // Only where the persona has an ETRN text; otherwise unknown.
    {"ETRN", true, false, "", &S::CheckEtrn, &S::Etrn},
    {"VERB", true, false, "", &S::CheckNothing, &S::Verb},  // sendmail only
    {"STARTTLS", false, false, "STARTTLS", &S::CheckStartTls, &S::StartTls},
    {"AUTH", false, true, "", &S::CheckAuth, &S::Auth},
};

base::Result<SessionOptions> MakeSessionOptions(const smtp::Options& c,
                                                const std::string& hostname,
                                                bool tls_available) {
  PersonaTexts custom{c.custom_banner, c.custom_ehlo_greeting, c.custom_ok,
                      c.custom_queued, c.custom_bye};
  auto persona = MakePersona(c.persona, hostname, custom);
  if (!persona.ok()) return persona.status();
  SessionOptions o;
  o.persona = std::move(persona).value();
  o.max_line_length = c.max_line_length;
  o.max_text_line_length = c.max_text_line_length;
  o.max_recipients = c.max_recipients;
  o.max_message_size = c.max_message_size;
  o.max_commands = c.max_commands;
  o.max_junk_commands = c.max_junk_commands;
  o.max_errors = c.max_errors;
  o.final_reply = c.final_reply == "tempfail" ? FinalReply::kTempfail
                  : c.final_reply == "reject" ? FinalReply::kReject
                                              : FinalReply::kAccept;
  o.auth = c.auth;
  o.starttls = c.starttls && tls_available;
  return o;
}

Stage StageOf(Reply r) {
  switch (r) {
    case Reply::kGreeting:
    case Reply::kGreetingRefused:
      return Stage::kGreeting;
    case Reply::kHelo:
    case Reply::kEhloFirst:
      return Stage::kHelo;
    case Reply::kMailOk:
      return Stage::kMail;
    case Reply::kRcptOk:
    case Reply::kTooManyRecipients:
      return Stage::kRcpt;
    case Reply::kDataGo:
      return Stage::kData;
    case Reply::kQueued:
    case Reply::kTempfail:
    case Reply::kRejected:
    case Reply::kTooBig:
    case Reply::kTextLineTooLong:
      return Stage::kDataEnd;
    default:
      return Stage::kOther;
  }
}

const char* ServerSession::StateName(State s) {
  switch (s) {
    case State::kFresh:
      return "fresh";
    case State::kGreeted:
      return "greeted";
    case State::kMail:
      return "mail";
    case State::kData:
      return "data";
    case State::kBdatChunk:
      return "bdat_chunk";
    case State::kDiscard:
      return "discard";
    case State::kAuth:
      return "auth";
    case State::kRefused:
      return "refused";
  }
  return "?";
}

ServerSession::ServerSession(const SessionOptions* opts, Output* out,
                             std::string client_ip, uint64_t seed)
    : opts_(opts),
      out_(out),
      final_reply_(opts->final_reply),
      client_ip_(std::move(client_ip)),
      ids_(seed) {}

// The one place the state changes; traced at debug level.
void ServerSession::EnterState(State s) {
  if (s != state_ && base::LogEnabled(base::LogLevel::kDebug)) {
    base::LogLine(base::LogLevel::kDebug, "smtp_state")
        .Kv("client", client_ip_)
        .Kv("from", StateName(state_))
        .Kv("to", StateName(s));
  }
  state_ = s;
}

void ServerSession::Append(Reply r, std::string_view arg, uint64_t size) {
  std::string* out = &out_->bytes;
  const size_t start = out->size();
  const std::string& t = opts_->persona.replies[int(r)];
  // A plain loop: find_first_of calls memchr on the set for every byte of
  // the template (the top user-space item with ten RCPTs per message).
  bool plain = true;
  for (char c : t) plain &= c != '{' && c != '\n';
  if (plain) {
    out->append(t);
  } else {
    for (size_t i = 0; i < t.size();) {
      if (t[i] == '\n') {
        out->append("\r\n");
        ++i;
        continue;
      }
      size_t close = t[i] == '{' ? t.find('}', i) : std::string::npos;
      if (close == std::string::npos) {  // plain text, or a '{' left open
        out->push_back(t[i++]);
        continue;
      }
      std::string_view var(t.data() + i + 1, close - i - 1);
      if (var == "arg") {
        AppendSanitized(out, arg);
      } else if (var == "text") {  // bounded by the command line's limit
        AppendSanitized(out, arg, size_t(opts_->max_line_length) * 2);
      } else if (var == "client") {
        out->append(client_ip_);
      } else if (var == "helo") {  // the whole name, as Exim echoes it
        AppendSanitized(out, arg, size_t(opts_->max_line_length) * 2);
      } else if (var == "chunk") {  // the last BDAT chunk's size
        out->append(std::to_string(chunk_.size));
      } else if (var == "size") {
        out->append(std::to_string(size));
      } else if (var == "id" || var == "date") {
        out->append(arg);  // the caller passes the id or the date as arg
      } else {
        out->append(t, i, close - i + 1);
      }
      i = close + 1;
    }
  }
  out->append("\r\n");
  out_->marks.push_back({uint32_t(out->size()), r, StageOf(r)});
  MarkSleeps(start);
}

// Rules::soft_error_limit: the reply just appended (from start) waits one
// error sleep per line. Postfix decides before it writes the reply, with
// the errors counted so far (the error this reply answers comes after).
void ServerSession::MarkSleeps(size_t start) {
  const Rules& rules = opts_->persona.rules;
  if (rules.soft_error_limit <= 0 ||
      errors_ < uint32_t(rules.soft_error_limit)) {
    return;
  }
  std::string_view reply = std::string_view(out_->bytes).substr(start);
  size_t lines = 0;
  for (size_t i = reply.find('\n'); i != std::string_view::npos;
       i = reply.find('\n', i + 1)) {
    ++lines;
  }
  out_->marks.back().sleeps = uint8_t(std::min<size_t>(lines, 255));
}

Step ServerSession::Begin() {
  out_->bytes.clear();
  out_->marks.clear();
  return Step{};
}

Step ServerSession::End(size_t consumed, Action a) {
  Step s;
  s.consumed = consumed;
  s.bytes = out_->bytes;
  s.replies = out_->marks;
  s.action = a;
  s.close_reason = close_reason_;
  return s;
}

Step ServerSession::Greet(double wall) {
  Begin();
  Append(Reply::kGreeting, Rfc5322Date(wall));
  return End(0, Action::kContinue);
}

Step ServerSession::GreetRefused() {
  Begin();
  Append(Reply::kGreetingRefused);
  EnterState(State::kRefused);
  return End(0, Action::kContinue);
}

Step ServerSession::Abort(Reply reply) {
  Begin();
  if (!opts_->persona.replies[int(reply)].empty()) Append(reply);  // or mute
  return End(0, Action::kClose);
}

void ServerSession::Trim() {
  if (carry_.empty()) carry_.shrink_to_fit();
}

void ServerSession::TlsStarted() {
  tls_active_ = true;
  bdat_open_ = false;
  ResetTransaction();
  EnterState(State::kFresh);
  ehlo_ = false;
  carry_.clear();
}

void ServerSession::ResetTransaction() {
  if (state_ == State::kMail) EnterState(State::kGreeted);
  txn_ = Transaction{};
  if (!exim_rcpt_reply_.empty()) ForgetEximRcptReplies();
}

Action ServerSession::Close(Reply r, CloseReason why) {
  Append(r);
  close_reason_ = why;
  return Action::kClose;
}

// Rules::junk_counts_errors: a junk command past the limit, answered
// already, is one more error (the hard limit closes as any error's would).
Action ServerSession::JunkError() {
  ++facts_.protocol_errors;
  if (++errors_ < uint32_t(opts_->max_errors)) return Action::kContinue;
  ++events_->limit_errors;
  ++events_->limits_hit;
  ++facts_.limits_hit;
  return Close(Reply::kTooManyErrors, CloseReason::kTooManyErrors);
}

Action ServerSession::Error(Reply r, std::string_view arg, bool counted) {
  if (opts_->persona.rules.exim_error_limits) {
    Action a = EximError(r, arg, counted);
    if (a != Action::kContinue) return a;
  } else {
    Append(r, arg);
  }
  ++facts_.protocol_errors;
  const std::string& t = opts_->persona.replies[int(r)];
  if (t.starts_with("501")) ++events_->syntax_errors;
  if (t.starts_with("503")) ++events_->bad_sequence;
  if (t.starts_with("521") || (r == Reply::kLineTooLong && t[0] == '4')) {
    close_reason_ = CloseReason::kTooManyErrors;
    return Action::kClose;
  }
  if (++errors_ >= uint32_t(opts_->max_errors)) {
    ++events_->limit_errors;
    ++events_->limits_hit;
    ++facts_.limits_hit;
    return Close(Reply::kTooManyErrors, CloseReason::kTooManyErrors);
  }
  return Action::kContinue;
}

// The body of DATA or BDAT chunk bytes, or the rest of an overlong line.
void ServerSession::ReadBody(std::string_view rest, size_t* pos) {
  if (state_ == State::kData) {
    size_t n = scanner_.Feed(rest);
    if (capture_) CaptureBody(rest.substr(0, n));
    *pos += n;
    return;
  }
  if (state_ == State::kBdatChunk) {
    uint64_t take = std::min<uint64_t>(chunk_.remaining, rest.size());
    if (chunk_.error == Reply::kCount) {
      if (capture_) CaptureBody(rest.substr(0, take));
      if (opts_->persona.rules.exim_bdat_total) {
        exim_size_.Feed(rest.substr(0, take));
      }
    }
    for (size_t i = 0; i < take; ++i) {
      if (rest[i] == '\n' && txn_.bdat_last_byte != '\r') ++txn_.bdat_bare_lf;
      txn_.bdat_last_byte = rest[i];
    }
    *pos += take;
    chunk_.remaining -= take;
    return;
  }
  // kDiscard: skip to the end of the overlong line (CR LF, possibly split).
  size_t i = 0;
  if ((discard_cr_ || opts_->persona.rules.lf_ends_line) && rest[0] == '\n') {
    i = 1;
  } else {
    size_t crlf =
        opts_->persona.rules.lf_ends_line ? rest.find('\n') : rest.find("\r\n");
    if (crlf == std::string_view::npos) {
      discard_cr_ = rest.back() == '\r';
      *pos += rest.size();
      return;
    }
    i = crlf + (opts_->persona.rules.lf_ends_line ? 1 : 2);
  }
  *pos += i;
  discard_cr_ = false;
  EnterState(discard_resume_);
}

// Finds the end of a command line in rest: CR LF, or with
// Rules::lf_ends_line a LF alone. Returns npos if none; *eol_size is the
// terminator's length and *cr whether a CR precedes the LF.
static size_t FindEol(std::string_view rest, bool lf, size_t* eol_size) {
  if (!lf) {
    *eol_size = 2;
    return rest.find("\r\n");
  }
  size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) return nl;
  if (nl > 0 && rest[nl - 1] == '\r') {
    *eol_size = 2;
    return nl - 1;
  }
  *eol_size = 1;
  return nl;
}

Step ServerSession::Feed(std::string_view in, double wall) {
  Step step = Begin();
  events_ = &step.events;
  auto finish = [&](size_t consumed, Action a) {
    Events ev = step.events;
    step = End(consumed, a);
    step.events = ev;
    events_ = nullptr;
    return step;
  };
  size_t pos = 0;
  int lines_here = 0;
  while (pos < in.size()) {
    if (out_->bytes.size() >= opts_->max_output) break;  // flow control
    std::string_view rest = in.substr(pos);
    if (state_ == State::kData || state_ == State::kBdatChunk ||
        state_ == State::kDiscard) {
      ReadBody(rest, &pos);
      Action a = Action::kContinue;
      if (truncated_pending_ && state_ != State::kDiscard) {
        truncated_pending_ = false;
        ++lines_here;
        a = state_ == State::kAuth ? AuthResponse(carry_)
                                   : Dispatch(carry_, wall);
        carry_.clear();
      } else if (state_ == State::kData && scanner_.done()) {
        a = FinishMessage(wall);
      } else if (state_ == State::kBdatChunk && chunk_.remaining == 0) {
        a = FinishChunk(wall);
      }
      if (a != Action::kContinue) return finish(pos, a);
      continue;
    }

    // Command mode: find one CR LF-terminated line.
    std::string_view line;
    size_t limit = size_t(opts_->max_line_length);
    const Rules& rules = opts_->persona.rules;
    size_t eol_size = 2;
    if (!carry_.empty() && carry_.back() == '\r' && rest[0] == '\n') {
      carry_.pop_back();
      line = carry_;
      pos += 1;
    } else if (rules.lf_ends_line && !carry_.empty() && rest[0] == '\n') {
      line = carry_;
      pos += 1;
    } else {
      size_t crlf = FindEol(rest, rules.lf_ends_line, &eol_size);
      if (crlf == std::string_view::npos) {
        if (carry_.size() + rest.size() >= limit) {
          // Over the limit with no end in sight: answer now (or, cutting
          // long lines, once the end is skipped), skip the rest.
          ++events_->long_lines;
          ++events_->limits_hit;
          ++facts_.limits_hit;
          discard_cr_ = rest.back() == '\r';
          discard_resume_ = state_ == State::kAuth ? State::kGreeted : state_;
          auth_steps_ = 0;
          pos = in.size();
          if (rules.truncate_long_lines) {
            size_t keep =
                limit - 2 > carry_.size() ? limit - 2 - carry_.size() : 0;
            carry_.append(rest.substr(0, keep));
            truncated_pending_ = true;
            EnterState(State::kDiscard);
            continue;
          }
          carry_.clear();
          Action a = Error(Reply::kLineTooLong);
          EnterState(State::kDiscard);
          if (a != Action::kContinue) return finish(pos, a);
          continue;
        }
        carry_.append(rest);
        pos = in.size();
        continue;
      }
      if (carry_.empty()) {
        line = rest.substr(0, crlf);
      } else {
        carry_.append(rest.substr(0, crlf));
        line = carry_;
      }
      pos += crlf + eol_size;
    }
    ++lines_here;
    if (lines_here > 1 && !ehlo_) facts_.pipelined_without_ehlo = true;
    input_pending_ = pos < in.size();
    Action a;
    if (line.size() + 2 > limit && rules.truncate_long_lines) {
      ++events_->long_lines;
      ++events_->limits_hit;
      ++facts_.limits_hit;
      a = Dispatch(line.substr(0, limit - 2), wall);
    } else if (line.size() + 2 > limit) {
      ++events_->long_lines;
      ++events_->limits_hit;
      ++facts_.limits_hit;
      a = Error(Reply::kLineTooLong);
    } else if (state_ == State::kAuth) {
      a = AuthResponse(line);
    } else {
      a = Dispatch(line, wall);
    }
    carry_.clear();
    if (a != Action::kContinue) return finish(pos, a);
  }
  return finish(pos, Action::kContinue);
}

// Off, the trace costs one relaxed load per command. The argument is not
// logged (addresses, AUTH secrets), only its size; the reply's first line
// is cut at 80 bytes.
Action ServerSession::Execute(std::string_view line, double wall) {
  ++events_->commands;
  ++facts_.commands;
  if (facts_.commands > uint32_t(opts_->max_commands)) {
    ++events_->limit_commands;
    ++events_->limits_hit;
    ++facts_.limits_hit;
    return Close(Reply::kTooManyCommands, CloseReason::kTooManyCommands);
  }
  for (unsigned char c : line) {
    if (c == '\n') ++facts_.bare_lf;
  }
  std::string_view verb, arg;
  SplitCommand(line, &verb, &arg);
  if (state_ == State::kRefused) {
    if (EqualsIgnoreCase(verb, "QUIT")) return Quit(arg, wall);
    return Error(Reply::kOnlyQuit);
  }
  const std::string* reply_text = opts_->persona.replies.data();
  if (opts_->persona.rules.exim_envelope &&
      line.find('\0') != std::string_view::npos) {
    return Error(Reply::kNulInCommand);  // Exim's, whatever the verb
  }
  if (opts_->persona.rules.exim_sequence && EximOutOfSync(line, verb, arg)) {
    return Close(Reply::kSyncError, CloseReason::kTooManyErrors);
  }
  if (verb.empty() && bdat_open_ && opts_->persona.rules.exim_sequence) {
    return Error(Reply::kMailAfterBdat);  // Exim's bdat_getc(): only BDAT
  }
  if (verb.empty()) {
    ++events_->unknown_commands;
    ++facts_.unknown_commands;
    if (!opts_->persona.rules.sendmail_sequence)
      return Error(Reply::kEmptyLine);
    return Error(Reply::kEmptyLine, SendmailEcho(line));
  }
  for (const auto& cmd : kCommands) {
    if (!EqualsIgnoreCase(verb, cmd.verb)) continue;
    if (opts_->persona.rules.exim_envelope && !EximVerbComplete(line, verb)) {
      break;  // "MAIL" without " FROM:": unknown to Exim
    }
    if (Unoffered(cmd.proceed)) break;  // not in this persona: an unknown verb
    if (Reply r = SendmailPregreet(cmd.proceed); r != Reply::kCount) {
      return Error(r);
    }
    bool junk_error = false;
    if (opts_->persona.rules.junk_counts_errors) {
      const bool limited =
          cmd.junk ? cmd.check != &S::CheckExpn && cmd.check != &S::CheckHelp
                   : cmd.check == &S::CheckHelo || cmd.check == &S::CheckEhlo;
      junk_error = limited && junk_++ > uint32_t(opts_->max_junk_commands);
    } else if (cmd.junk && ++junk_ > uint32_t(opts_->max_junk_commands)) {
      ++events_->limit_commands;
      ++events_->limits_hit;
      ++facts_.limits_hit;
      return Close(Reply::kTooManyCommands, CloseReason::kTooManyJunk);
    }
    if (cmd.auth) {
      ++events_->auth_attempts;
      ++facts_.auth_attempts;
    }
    Reply refused = (this->*cmd.check)(arg);
    const size_t start = out_->bytes.size();
    Action a =
        refused != Reply::kCount
            ? Error(refused, refused == Reply::kSyntaxNoArgs ? cmd.usage : arg)
            : (this->*cmd.proceed)(arg, wall);
    if (cmd.proceed == &S::Rcpt && opts_->persona.rules.exim_sequence) {
      NoteEximRcptReply(start);
    }
    if (junk_error && a == Action::kContinue) a = JunkError();
    return a;
  }
  ++events_->unknown_commands;
  ++facts_.unknown_commands;
  if (!reply_text[int(Reply::kForbidden)].empty() && IsForbiddenVerb(verb)) {
    return Close(Reply::kForbidden, CloseReason::kTooManyErrors);
  }
  if (!opts_->persona.rules.sendmail_sequence)
    return Error(Reply::kUnknown, verb);
  return SendmailUnknown(verb, line);
}

}  // namespace smtp
