// The verbs of the dialogue proper: HELO/EHLO, MAIL, RCPT, RSET, NOOP, QUIT,
// VRFY, EXPN, HELP, STARTTLS. Each has a check (may it proceed now?) and a
// proceed (parse the argument, reply, change state), rows of the table in
// server_session.cc.
#include "smtp/command.h"
#include "smtp/server_session.h"

namespace smtp {
namespace {

void AppendLower(std::string* out, std::string_view s) {
  for (char c : s) out->push_back(c >= 'A' && c <= 'Z' ? char(c + 32) : c);
}

bool RefusedByPersona(const SessionOptions& o, Reply r) {
  const std::string& t = o.persona.replies[int(r)];
  return !t.empty() && t[0] == '5';
}

}  // namespace

// --- Checks -----------------------------------------------------------------

Reply ServerSession::CheckHelo(std::string_view arg) const {
  return arg.empty() ? Reply::kSyntaxHelo : Reply::kCount;
}

Reply ServerSession::CheckMail(std::string_view) const {
  if (state_ == State::kFresh) return Reply::kNeedHelo;
  if (state_ == State::kMail) return Reply::kNestedMail;
  return Reply::kCount;
}

Reply ServerSession::CheckRcpt(std::string_view) const {
  return state_ == State::kMail ? Reply::kCount : Reply::kNeedMail;
}

Reply ServerSession::CheckData(std::string_view arg) const {
  if (!arg.empty()) return Reply::kSyntaxData;
  if (state_ != State::kMail || txn_.rcpts == 0 || txn_.bdat_total > 0) {
    return state_ == State::kFresh  ? Reply::kNeedHelo
           : state_ == State::kMail ? Reply::kNeedRcpt
                                    : Reply::kNeedMail;
  }
  return Reply::kCount;
}

Reply ServerSession::CheckNoArgs(std::string_view arg) const {
  return arg.empty() ? Reply::kCount : Reply::kSyntaxNoArgs;
}

Reply ServerSession::CheckVrfy(std::string_view arg) const {
  return arg.empty() ? Reply::kSyntaxNoArgs : Reply::kCount;
}

Reply ServerSession::CheckExpn(std::string_view) const {
  return RefusedByPersona(*opts_, Reply::kExpn) ? Reply::kExpn : Reply::kCount;
}

Reply ServerSession::CheckHelp(std::string_view) const {
  return RefusedByPersona(*opts_, Reply::kHelp) ? Reply::kHelp : Reply::kCount;
}

Reply ServerSession::CheckStartTls(std::string_view arg) const {
  if (!opts_->starttls || tls_active_) return Reply::kTlsNotAvailable;
  if (!arg.empty()) return Reply::kSyntaxNoArgs;
  if (state_ == State::kMail) return Reply::kBadSequenceTls;
  return Reply::kCount;
}

// --- Proceeds ---------------------------------------------------------------

Action ServerSession::Helo(std::string_view arg, double) {
  ResetTransaction();
  helo_.assign(arg.substr(0, peer::kMaxNameLength));
  peer::AddName(&facts_.helo_names, helo_);
  ehlo_ = false;
  EnterState(State::kGreeted);
  Append(Reply::kHelo);
  return Action::kContinue;
}

Action ServerSession::Ehlo(std::string_view arg, double) {
  ResetTransaction();
  helo_.assign(arg.substr(0, peer::kMaxNameLength));
  peer::AddName(&facts_.helo_names, helo_);
  ehlo_ = true;
  EnterState(State::kGreeted);
  AppendEhlo();
  return Action::kContinue;
}

void ServerSession::AppendEhlo() {
  // A multi-line reply: "250-" on every line but the last, which is "250 ".
  std::string* out = &out_->bytes;
  size_t last_line = out->size();
  Append(Reply::kEhloFirst);
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
  out_->marks.back().end = uint32_t(out->size());  // one mark for all lines
}

Action ServerSession::Mail(std::string_view arg, double) {
  PathCommand pc;
  if (!ParsePathCommand(arg, "FROM:", &pc)) return Error(Reply::kSyntaxMail);
  if (!pc.address.empty() && !ValidMailbox(pc.address)) {
    return Error(Reply::kBadSender, pc.address);
  }
  for (const auto& p : pc.params) {
    if (EqualsIgnoreCase(p.keyword, "SIZE")) {
      uint64_t size;
      if (!ParseCount(p.value, &size)) return Error(Reply::kSyntaxMail);
      if (size > uint64_t(opts_->max_message_size)) {
        ++events_->too_big;
        ++events_->limits_hit;
        ++facts_.limits_hit;
        return Error(Reply::kSizeDeclined);
      }
    } else if (EqualsIgnoreCase(p.keyword, "BODY")) {
      if (!EqualsIgnoreCase(p.value, "7BIT") &&
          !EqualsIgnoreCase(p.value, "8BITMIME") &&
          !EqualsIgnoreCase(p.value, "BINARYMIME")) {
        return Error(Reply::kBadParameter, p.keyword);
      }
    } else if (!EqualsIgnoreCase(p.keyword, "SMTPUTF8") &&
               !EqualsIgnoreCase(p.keyword, "AUTH") &&
               !EqualsIgnoreCase(p.keyword, "RET") &&
               !EqualsIgnoreCase(p.keyword, "ENVID") &&
               !EqualsIgnoreCase(p.keyword, "REQUIRETLS")) {
      return Error(Reply::kBadParameter, p.keyword);
    }
  }
  std::string domain;
  AppendLower(&domain, DomainOf(pc.address));
  peer::AddName(&facts_.mail_from_domains, pc.address.empty() ? "<>" : domain);
  ++facts_.transactions;
  txn_ = Transaction{};
  EnterState(State::kMail);
  Append(Reply::kMailOk, arg.substr(5));
  return Action::kContinue;
}

Action ServerSession::Rcpt(std::string_view arg, double) {
  PathCommand pc;
  if (!ParsePathCommand(arg, "TO:", &pc)) return Error(Reply::kSyntaxRcpt);
  if (!ValidMailbox(pc.address)) return Error(Reply::kBadRecipient, pc.address);
  for (const auto& p : pc.params) {
    if (!EqualsIgnoreCase(p.keyword, "NOTIFY") &&
        !EqualsIgnoreCase(p.keyword, "ORCPT")) {
      return Error(Reply::kBadParameter, p.keyword);
    }
  }
  if (txn_.rcpts >= uint32_t(opts_->max_recipients)) {
    // 452 is a temporary condition (RFC 5321 4.5.3.1.10): the client should
    // send the rest later. Not counted as a client error.
    ++events_->too_many_recipients;
    ++events_->limits_hit;
    ++facts_.limits_hit;
    Append(Reply::kTooManyRecipients);
    return Action::kContinue;
  }
  ++txn_.rcpts;
  ++facts_.recipients;
  ++events_->recipients;
  std::string domain;
  AppendLower(&domain, DomainOf(pc.address));
  peer::AddName(&facts_.rcpt_domains, domain);
  Append(Reply::kRcptOk, arg.substr(3));
  return Action::kContinue;
}

Action ServerSession::Rset(std::string_view, double) {
  ResetTransaction();
  Append(Reply::kRset);
  return Action::kContinue;
}

Action ServerSession::Noop(std::string_view, double) {
  Append(Reply::kNoop);
  return Action::kContinue;
}

Action ServerSession::Quit(std::string_view, double) {
  return Close(Reply::kQuit, CloseReason::kQuit);
}

Action ServerSession::Vrfy(std::string_view arg, double) {
  Append(Reply::kVrfy, arg);
  return Action::kContinue;
}

Action ServerSession::Expn(std::string_view arg, double) {
  Append(Reply::kExpn, arg);
  return Action::kContinue;
}

Action ServerSession::Help(std::string_view arg, double) {
  Append(Reply::kHelp, arg);
  return Action::kContinue;
}

Action ServerSession::StartTls(std::string_view, double) {
  Append(Reply::kStartTls);
  return Action::kStartTls;
}

}  // namespace smtp
