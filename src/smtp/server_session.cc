#include "smtp/server_session.h"

#include <algorithm>
#include <cstring>

#include "base/metrics.h"
#include "smtp/command.h"

namespace smtp {

using Action = ServerSession::Action;
using base::Count;
using base::Counter;

// One row per verb: whether it is a "junk" command (counted against
// max_junk_commands) and the handler that checks and carries it out.
struct ServerSession::Command {
  std::string_view verb;
  bool junk;
  Action (ServerSession::*handler)(std::string_view, double, std::string*);
};

using S = ServerSession;
const S::Command S::kCommands[] = {
    {"EHLO", false, &S::Ehlo},         {"HELO", false, &S::Helo},
    {"MAIL", false, &S::Mail},         {"RCPT", false, &S::Rcpt},
    {"DATA", false, &S::Data},         {"BDAT", false, &S::Bdat},
    {"RSET", true, &S::Rset},          {"NOOP", true, &S::Noop},
    {"QUIT", false, &S::Quit},         {"VRFY", true, &S::Vrfy},
    {"EXPN", true, &S::Expn},          {"HELP", true, &S::Help},
    {"STARTTLS", false, &S::StartTls}, {"AUTH", false, &S::Auth},
};

namespace {

// Text from the client shown in a reply: bounded and printable.
void AppendSanitized(std::string* out, std::string_view s) {
  if (s.size() > 64) s = s.substr(0, 64);
  for (unsigned char c : s) out->push_back(c < ' ' || c == 0x7f ? '?' : c);
}

void AppendLower(std::string* out, std::string_view s) {
  for (char c : s) out->push_back(c >= 'A' && c <= 'Z' ? char(c + 32) : c);
}

}  // namespace

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

ServerSession::ServerSession(const SessionOptions* opts, SessionRecord* record,
                             std::string client_ip, uint64_t seed)
    : opts_(opts),
      record_(record),
      final_reply_(opts->final_reply),
      client_ip_(std::move(client_ip)),
      ids_(seed) {}

void ServerSession::Append(Reply r, std::string* out, std::string_view arg,
                           uint64_t size) {
  const std::string& t = opts_->persona.replies[int(r)];
  if (t.find_first_of("{\n") == std::string::npos) {
    out->append(t);
    out->append("\r\n");
    if (marks_) marks_->push_back({out->size(), r});
    return;
  }
  for (size_t i = 0; i < t.size();) {
    if (t[i] == '\n') {
      out->append("\r\n");
      ++i;
      continue;
    }
    if (t[i] != '{') {
      out->push_back(t[i++]);
      continue;
    }
    size_t close = t.find('}', i);
    std::string_view var(t.data() + i + 1, close - i - 1);
    if (var == "arg") {
      AppendSanitized(out, arg);
    } else if (var == "client") {
      out->append(client_ip_);
    } else if (var == "helo") {
      AppendSanitized(out, helo_);
    } else if (var == "size") {
      out->append(std::to_string(size));
    } else if (var == "id" || var == "date") {
      out->append(arg);  // the caller passes the id or the date as arg
    } else {
      out->append(t, i, close - i + 1);
    }
    i = close + 1;
  }
  out->append("\r\n");
  if (marks_) marks_->push_back({out->size(), r});
}

void ServerSession::Greet(double wall, std::string* out) {
  Append(Reply::kGreeting, out, Rfc5322Date(wall));
}

void ServerSession::GreetRefused(std::string* out) {
  Append(Reply::kGreetingRefused, out);
  state_ = State::kRefused;
}

void ServerSession::Trim() {
  if (carry_.empty()) carry_.shrink_to_fit();
}

void ServerSession::Abort(Reply reply, CloseReason reason, std::string* out) {
  Append(reply, out);
  record_->close_reason = reason;
}

void ServerSession::TlsStarted() {
  tls_active_ = true;
  record_->tls = true;
  ResetTransaction();
  state_ = State::kFresh;
  ehlo_ = false;
  helo_.clear();
  carry_.clear();
}

void ServerSession::ResetTransaction() {
  if (state_ == State::kMail) state_ = State::kGreeted;
  rcpts_ = 0;
  bdat_total_ = 0;
  bdat_error_ = Reply::kCount;
}

Action ServerSession::Error(Reply r, std::string* out, std::string_view arg) {
  Append(r, out, arg);
  ++record_->protocol_errors;
  if (++errors_ >= uint32_t(opts_->max_errors)) {
    Count(Counter::kLimitErrors);
    ++record_->limits_hit;
    Abort(Reply::kTooManyErrors, CloseReason::kTooManyErrors, out);
    return Action::kClose;
  }
  return Action::kContinue;
}

ServerSession::Step ServerSession::Feed(std::string_view in, double wall,
                                        std::string* out) {
  size_t pos = 0;
  int lines_here = 0;
  while (pos < in.size()) {
    std::string_view rest = in.substr(pos);
    switch (state_) {
      case State::kData: {
        pos += scanner_.Feed(rest);
        if (scanner_.done()) {
          Action a = FinishMessage(wall, out);
          if (a != Action::kContinue) return {pos, a};
        }
        continue;
      }
      case State::kBdatChunk: {
        uint64_t take = std::min<uint64_t>(bdat_remaining_, rest.size());
        pos += take;
        bdat_remaining_ -= take;
        if (bdat_remaining_ == 0) {
          Action a = FinishChunk(wall, out);
          if (a != Action::kContinue) return {pos, a};
        }
        continue;
      }
      case State::kDiscard: {
        // Skip to the end of the overlong line (CR LF, possibly split).
        size_t i = 0;
        if (discard_cr_ && rest[0] == '\n') {
          i = 1;
        } else {
          size_t crlf = rest.find("\r\n");
          if (crlf == std::string_view::npos) {
            discard_cr_ = rest.back() == '\r';
            pos = in.size();
            continue;
          }
          i = crlf + 2;
        }
        pos += i;
        discard_cr_ = false;
        state_ = discard_resume_;
        continue;
      }
      default:
        break;
    }

    // Command mode: find one CR LF-terminated line.
    std::string_view line;
    size_t limit = size_t(opts_->max_line_length);
    if (!carry_.empty() && carry_.back() == '\r' && rest[0] == '\n') {
      carry_.pop_back();
      line = carry_;
      pos += 1;
    } else {
      size_t crlf = rest.find("\r\n");
      if (crlf == std::string_view::npos) {
        if (carry_.size() + rest.size() >= limit) {
          // Over the limit with no end in sight: answer now, skip the rest.
          carry_.clear();
          Count(Counter::kLongLines);
          ++record_->limits_hit;
          discard_cr_ = rest.back() == '\r';
          discard_resume_ = state_ == State::kAuth ? State::kGreeted : state_;
          auth_steps_ = 0;
          pos = in.size();
          Action a = Error(Reply::kLineTooLong, out);
          state_ = State::kDiscard;
          if (a != Action::kContinue) return {pos, a};
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
      pos += crlf + 2;
    }
    ++lines_here;
    if (lines_here > 1 && !ehlo_) record_->pipelined_without_ehlo = true;
    Action a;
    if (line.size() + 2 > limit) {
      Count(Counter::kLongLines);
      ++record_->limits_hit;
      a = Error(Reply::kLineTooLong, out);
    } else if (state_ == State::kAuth) {
      a = AuthResponse(line, out);
    } else {
      a = Dispatch(line, wall, out);
    }
    carry_.clear();
    if (a != Action::kContinue) return {pos, a};
  }
  return {pos, Action::kContinue};
}

Action ServerSession::Dispatch(std::string_view line, double wall,
                               std::string* out) {
  Count(Counter::kCommands);
  ++record_->commands;
  if (record_->commands > uint32_t(opts_->max_commands)) {
    Count(Counter::kLimitCommands);
    ++record_->limits_hit;
    Abort(Reply::kTooManyCommands, CloseReason::kTooManyCommands, out);
    return Action::kClose;
  }
  for (unsigned char c : line) {
    if (c == '\n') ++record_->bare_lf;
  }
  std::string_view verb, arg;
  SplitCommand(line, &verb, &arg);
  if (state_ == State::kRefused) {
    if (EqualsIgnoreCase(verb, "QUIT")) return Quit(arg, wall, out);
    return Error(Reply::kOnlyQuit, out);
  }
  for (const auto& cmd : kCommands) {
    if (!EqualsIgnoreCase(verb, cmd.verb)) continue;
    if (cmd.junk && ++junk_ > uint32_t(opts_->max_junk_commands)) {
      Count(Counter::kLimitCommands);
      ++record_->limits_hit;
      Abort(Reply::kTooManyCommands, CloseReason::kTooManyJunk, out);
      return Action::kClose;
    }
    return (this->*cmd.handler)(arg, wall, out);
  }
  Count(Counter::kUnknownCommands);
  ++record_->unknown_commands;
  return Error(Reply::kUnknown, out, verb);
}

Action ServerSession::Helo(std::string_view arg, double, std::string* out) {
  if (arg.empty()) return Error(Reply::kSyntaxHelo, out);
  ResetTransaction();
  helo_.assign(arg.substr(0, kMaxNameLength));
  AddName(&record_->helo_names, helo_);
  ehlo_ = false;
  state_ = State::kGreeted;
  Append(Reply::kHelo, out);
  return Action::kContinue;
}

Action ServerSession::Ehlo(std::string_view arg, double, std::string* out) {
  if (arg.empty()) return Error(Reply::kSyntaxEhlo, out);
  ResetTransaction();
  helo_.assign(arg.substr(0, kMaxNameLength));
  AddName(&record_->helo_names, helo_);
  ehlo_ = true;
  state_ = State::kGreeted;
  AppendEhlo(out);
  return Action::kContinue;
}

void ServerSession::AppendEhlo(std::string* out) {
  // A multi-line reply: "250-" on every line but the last, which is "250 ".
  size_t last_line = out->size();
  Append(Reply::kEhloFirst, out);
  for (const auto& k : opts_->persona.ehlo_keywords) {
    if (k.starts_with("AUTH") && !opts_->auth) continue;
    if (k == "STARTTLS" && (!opts_->starttls || tls_active_)) continue;
    last_line = out->size();
    out->append("250-");
    out->append(k);
    if (k == "SIZE") {
      out->push_back(' ');
      out->append(std::to_string(opts_->max_message_size));
    }
    out->append("\r\n");
  }
  (*out)[last_line + 3] = ' ';
  if (marks_) marks_->back().end = out->size();  // one mark for all lines
}

Action ServerSession::Mail(std::string_view arg, double, std::string* out) {
  if (state_ == State::kFresh) {
    Count(Counter::kBadSequence);
    return Error(Reply::kNeedHelo, out);
  }
  if (state_ == State::kMail) {
    Count(Counter::kBadSequence);
    return Error(Reply::kNestedMail, out);
  }
  PathCommand pc;
  if (!ParsePathCommand(arg, "FROM:", &pc)) {
    Count(Counter::kSyntaxErrors);
    return Error(Reply::kSyntaxMail, out);
  }
  if (!pc.address.empty() && !ValidMailbox(pc.address)) {
    Count(Counter::kSyntaxErrors);
    return Error(Reply::kBadSender, out, pc.address);
  }
  for (const auto& p : pc.params) {
    if (EqualsIgnoreCase(p.keyword, "SIZE")) {
      uint64_t size;
      if (!ParseCount(p.value, &size)) return Error(Reply::kSyntaxMail, out);
      if (size > uint64_t(opts_->max_message_size)) {
        Count(Counter::kTooBig);
        ++record_->limits_hit;
        return Error(Reply::kSizeDeclined, out);
      }
    } else if (EqualsIgnoreCase(p.keyword, "BODY")) {
      if (!EqualsIgnoreCase(p.value, "7BIT") &&
          !EqualsIgnoreCase(p.value, "8BITMIME") &&
          !EqualsIgnoreCase(p.value, "BINARYMIME")) {
        return Error(Reply::kBadParameter, out, p.keyword);
      }
    } else if (!EqualsIgnoreCase(p.keyword, "SMTPUTF8") &&
               !EqualsIgnoreCase(p.keyword, "AUTH") &&
               !EqualsIgnoreCase(p.keyword, "RET") &&
               !EqualsIgnoreCase(p.keyword, "ENVID") &&
               !EqualsIgnoreCase(p.keyword, "REQUIRETLS")) {
      return Error(Reply::kBadParameter, out, p.keyword);
    }
  }
  std::string domain;
  AppendLower(&domain, DomainOf(pc.address));
  AddName(&record_->mail_from_domains, pc.address.empty() ? "<>" : domain);
  ++record_->transactions;
  state_ = State::kMail;
  rcpts_ = 0;
  bdat_total_ = 0;
  bdat_error_ = Reply::kCount;
  Append(Reply::kMailOk, out, arg.substr(5));
  return Action::kContinue;
}

Action ServerSession::Rcpt(std::string_view arg, double, std::string* out) {
  if (state_ != State::kMail) {
    Count(Counter::kBadSequence);
    return Error(Reply::kNeedMail, out);
  }
  PathCommand pc;
  if (!ParsePathCommand(arg, "TO:", &pc)) {
    Count(Counter::kSyntaxErrors);
    return Error(Reply::kSyntaxRcpt, out);
  }
  if (!ValidMailbox(pc.address)) {
    Count(Counter::kSyntaxErrors);
    return Error(Reply::kBadRecipient, out, pc.address);
  }
  for (const auto& p : pc.params) {
    if (!EqualsIgnoreCase(p.keyword, "NOTIFY") &&
        !EqualsIgnoreCase(p.keyword, "ORCPT")) {
      return Error(Reply::kBadParameter, out, p.keyword);
    }
  }
  if (rcpts_ >= uint32_t(opts_->max_recipients)) {
    // 452 is a temporary condition (RFC 5321 4.5.3.1.10): the client should
    // send the rest later. Not counted as a client error.
    Count(Counter::kTooManyRecipients);
    ++record_->limits_hit;
    Append(Reply::kTooManyRecipients, out);
    return Action::kContinue;
  }
  ++rcpts_;
  ++record_->recipients;
  Count(Counter::kRecipients);
  std::string domain;
  AppendLower(&domain, DomainOf(pc.address));
  AddName(&record_->rcpt_domains, domain);
  Append(Reply::kRcptOk, out, arg.substr(3));
  return Action::kContinue;
}

Action ServerSession::Data(std::string_view arg, double, std::string* out) {
  if (!arg.empty()) return Error(Reply::kSyntaxData, out);
  if (state_ != State::kMail || rcpts_ == 0 || bdat_total_ > 0) {
    Count(Counter::kBadSequence);
    return Error(state_ == State::kFresh  ? Reply::kNeedHelo
                 : state_ == State::kMail ? Reply::kNeedRcpt
                                          : Reply::kNeedMail,
                 out);
  }
  scanner_.Reset();
  state_ = State::kData;
  Append(Reply::kDataGo, out);
  return Action::kContinue;
}

Action ServerSession::FinishMessage(double wall, std::string* out) {
  record_->bare_lf += scanner_.bare_lf();
  record_->bare_cr += scanner_.bare_cr();
  Count(Counter::kBareLf, scanner_.bare_lf());
  Count(Counter::kBareCr, scanner_.bare_cr());
  Count(Counter::kBytes, scanner_.size());
  record_->bytes += scanner_.size();
  state_ = State::kGreeted;
  ResetTransaction();
  if (scanner_.size() > uint64_t(opts_->max_message_size)) {
    Count(Counter::kTooBig);
    Count(Counter::kMessagesRejected);
    ++record_->limits_hit;
    return Error(Reply::kTooBig, out);
  }
  if (opts_->max_text_line_length > 0 &&
      scanner_.longest_line() > uint64_t(opts_->max_text_line_length)) {
    Count(Counter::kLongLines);
    Count(Counter::kMessagesRejected);
    ++record_->limits_hit;
    return Error(Reply::kTextLineTooLong, out);
  }
  return AnswerMessage(wall, out);
}

Action ServerSession::Bdat(std::string_view arg, double wall,
                           std::string* out) {
  std::string_view size_text, last;
  SplitCommand(arg, &size_text, &last);
  uint64_t size;
  if (!ParseCount(size_text, &size) ||
      (!last.empty() && !EqualsIgnoreCase(last, "LAST"))) {
    Count(Counter::kSyntaxErrors);
    return Error(Reply::kSyntaxBdat, out);
  }
  // The chunk is read whatever the verdict (RFC 3030 4.2): decide the reply
  // now, send it after the bytes.
  bdat_last_ = !last.empty();
  bdat_remaining_ = size;
  bdat_chunk_ = size;
  bdat_resume_ = state_;
  if (state_ == State::kFresh) {
    bdat_error_ = Reply::kNeedHelo;
  } else if (state_ != State::kMail) {
    bdat_error_ = Reply::kNeedMail;
  } else if (rcpts_ == 0) {
    bdat_error_ = Reply::kNeedRcpt;
  } else if (bdat_error_ == Reply::kCount &&
             bdat_total_ + size > uint64_t(opts_->max_message_size)) {
    bdat_error_ = Reply::kTooBig;
  }
  state_ = State::kBdatChunk;
  bdat_total_ += size;
  if (size == 0) return FinishChunk(wall, out);
  return Action::kContinue;
}

Action ServerSession::FinishChunk(double wall, std::string* out) {
  state_ = bdat_resume_;
  Reply error = bdat_error_;
  if (error != Reply::kCount) {
    if (error == Reply::kTooBig) {
      Count(Counter::kTooBig);
      Count(Counter::kMessagesRejected);
      ++record_->limits_hit;
      ResetTransaction();
    } else {
      Count(Counter::kBadSequence);
    }
    bdat_error_ = Reply::kCount;
    return Error(error, out);
  }
  if (!bdat_last_) {
    Append(Reply::kBdatChunk, out, {}, bdat_chunk_);
    return Action::kContinue;
  }
  record_->bytes += bdat_total_;
  Count(Counter::kBytes, bdat_total_);
  ResetTransaction();
  return AnswerMessage(wall, out);
}

// A whole message arrived within the limits: count it, answer per policy.
Action ServerSession::AnswerMessage(double wall, std::string* out) {
  ++record_->messages;
  Count(Counter::kMessages);
  switch (final_reply_) {
    case FinalReply::kAccept: {
      Count(Counter::kMessagesAccepted);
      std::string id;
      ids_.Append(opts_->persona.queue_id, wall, &id);
      Append(Reply::kQueued, out, id, uint64_t(wall * 1000) % 100000000000ull);
      break;
    }
    case FinalReply::kTempfail:
      Count(Counter::kMessagesTempfailed);
      Append(Reply::kTempfail, out);
      break;
    case FinalReply::kReject:
      Count(Counter::kMessagesRejected);
      Append(Reply::kRejected, out);
      break;
  }
  return Action::kContinue;
}

Action ServerSession::Rset(std::string_view arg, double, std::string* out) {
  if (!arg.empty()) return Error(Reply::kSyntaxNoArgs, out, "RSET");
  ResetTransaction();
  Append(Reply::kRset, out);
  return Action::kContinue;
}

Action ServerSession::Noop(std::string_view, double, std::string* out) {
  Append(Reply::kNoop, out);
  return Action::kContinue;
}

Action ServerSession::Quit(std::string_view, double, std::string* out) {
  Append(Reply::kQuit, out);
  record_->close_reason = CloseReason::kQuit;
  return Action::kClose;
}

Action ServerSession::Vrfy(std::string_view arg, double, std::string* out) {
  if (arg.empty()) return Error(Reply::kSyntaxNoArgs, out, "VRFY address");
  Append(Reply::kVrfy, out, arg);
  return Action::kContinue;
}

Action ServerSession::Expn(std::string_view arg, double, std::string* out) {
  const std::string& t = opts_->persona.replies[int(Reply::kExpn)];
  if (!t.empty() && t[0] == '5') return Error(Reply::kExpn, out, arg);
  Append(Reply::kExpn, out, arg);
  return Action::kContinue;
}

Action ServerSession::Help(std::string_view arg, double, std::string* out) {
  const std::string& t = opts_->persona.replies[int(Reply::kHelp)];
  if (!t.empty() && t[0] == '5') return Error(Reply::kHelp, out, arg);
  Append(Reply::kHelp, out, arg);
  return Action::kContinue;
}

Action ServerSession::StartTls(std::string_view arg, double, std::string* out) {
  if (!opts_->starttls || tls_active_) {
    return Error(Reply::kTlsNotAvailable, out);
  }
  if (!arg.empty()) return Error(Reply::kSyntaxNoArgs, out, "STARTTLS");
  if (state_ == State::kMail) return Error(Reply::kBadSequenceTls, out);
  Append(Reply::kStartTls, out);
  return Action::kStartTls;
}

Action ServerSession::Auth(std::string_view arg, double, std::string* out) {
  ++record_->auth_attempts;
  Count(Counter::kAuthAttempts);
  if (!opts_->auth) return Error(Reply::kAuthNotEnabled, out);
  if (state_ == State::kFresh) return Error(Reply::kNeedHelo, out);
  if (state_ == State::kMail) {
    Count(Counter::kBadSequence);
    return Error(Reply::kNestedMail, out);
  }
  std::string_view mech, initial;
  SplitCommand(arg, &mech, &initial);
  if (EqualsIgnoreCase(mech, "LOGIN")) {
    // Username (unless given), then password, then failure: the whole
    // exchange a password guesser expects, so it spends its round trips.
    auth_steps_ = initial.empty() ? 2 : 1;
    Append(
        initial.empty() ? Reply::kAuthChallengeUser : Reply::kAuthChallengePass,
        out);
    state_ = State::kAuth;
    return Action::kContinue;
  }
  if (EqualsIgnoreCase(mech, "PLAIN") && initial.empty()) {
    auth_steps_ = 1;
    Append(Reply::kAuthChallengePlain, out);
    state_ = State::kAuth;
    return Action::kContinue;
  }
  return Error(Reply::kAuthFailed, out);
}

Action ServerSession::AuthResponse(std::string_view line, std::string* out) {
  // Any response, even "*" (cancel), ends in failure eventually.
  if (--auth_steps_ > 0 && line != "*") {
    Append(Reply::kAuthChallengePass, out);
    return Action::kContinue;
  }
  auth_steps_ = 0;
  state_ = State::kGreeted;
  return Error(Reply::kAuthFailed, out);
}

}  // namespace smtp
