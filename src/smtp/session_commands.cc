// The verbs of the dialogue proper: HELO/EHLO, MAIL, RCPT, RSET, NOOP, QUIT,
// VRFY, EXPN, HELP, STARTTLS. Each has a check (may it proceed now?) and a
// proceed (parse the argument, reply, change state), rows of the table in
// server_session.cc.
#include <algorithm>

#include "base/log.h"
#include "smtp/command.h"
#include "smtp/server_session.h"

namespace smtp {
namespace {

void AppendLower(std::string* out, std::string_view s) {
  for (char c : s) out->push_back(c >= 'A' && c <= 'Z' ? char(c + 32) : c);
}

// "FROM:" or "TO:" followed by something: a path, if a malformed one.
bool HasPath(std::string_view arg, std::string_view prefix) {
  if (arg.size() <= prefix.size() ||
      !EqualsIgnoreCase(arg.substr(0, prefix.size()), prefix)) {
    return false;
  }
  return arg.find_first_not_of(" \t", prefix.size()) != std::string::npos;
}

bool MailboxOk(const Rules& rules, std::string_view address) {
  return rules.lenient_addresses ? LenientMailbox(address)
                                 : ValidMailbox(address);
}

// Rules::helo_checked: one name of letters, digits, '.', '-', or an
// address literal ("[192.0.2.1]", "[IPv6:...]"); else anything but nothing.
bool HeloNameOk(const Rules& rules, std::string_view name) {
  if (name.empty()) return false;
  if (!rules.helo_checked) return true;
  if (name.front() == '[') {
    if (name.size() < 3 || name.back() != ']') return false;
    for (unsigned char c : name.substr(1, name.size() - 2)) {
      bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                (c >= 'A' && c <= 'F') || c == '.' || c == ':' || c == 'I' ||
                c == 'P' || c == 'v' || c == 'V';
      if (!ok) return false;
    }
    return true;
  }
  for (unsigned char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool RefusedByPersona(const SessionOptions& o, Reply r) {
  const std::string& t = o.persona.replies[int(r)];
  return !t.empty() && t[0] == '5';
}

}  // namespace

// --- Checks -----------------------------------------------------------------

Reply ServerSession::CheckHelo(std::string_view arg) const {
  if (opts_->persona.rules.sendmail_sequence) {
    return SendmailCheckHelo(arg, Reply::kSyntaxHelo);
  }
  return HeloNameOk(opts_->persona.rules, arg) ? Reply::kCount
                                               : Reply::kSyntaxHelo;
}

Reply ServerSession::CheckEhlo(std::string_view arg) const {
  if (opts_->persona.rules.sendmail_sequence) {
    return SendmailCheckHelo(arg, Reply::kSyntaxEhlo);
  }
  return HeloNameOk(opts_->persona.rules, arg) ? Reply::kCount
                                               : Reply::kSyntaxEhlo;
}

Reply ServerSession::CheckQuit(std::string_view arg) const {
  return opts_->persona.rules.exim_sequence && !arg.empty()
             ? Reply::kSyntaxNoArgs
             : Reply::kCount;
}

Reply ServerSession::CheckMail(std::string_view) const {
  if (state_ == State::kFresh && opts_->persona.rules.helo_required) {
    return Reply::kNeedHelo;
  }
  if (bdat_open_ && opts_->persona.rules.exim_sequence) {
    return Reply::kMailAfterBdat;
  }
  if (state_ == State::kMail) return Reply::kNestedMail;
  if (bdat_open_) return Reply::kMailAfterBdat;
  return Reply::kCount;
}

Reply ServerSession::CheckRcpt(std::string_view) const {
  return state_ == State::kMail ? Reply::kCount : Reply::kNeedMail;
}

Reply ServerSession::CheckData(std::string_view arg) const {
  if (opts_->persona.rules.sendmail_sequence) {  // arguments ignored
    if (state_ != State::kMail) return Reply::kNeedMailData;
    return txn_.rcpts == 0 ? Reply::kNeedRcpt : Reply::kCount;
  }
  if (opts_->persona.rules.state_before_data_args) {
    // Postfix's order: recipients, then the syntax, then BDAT.
    if (state_ != State::kMail) return Reply::kNeedRcpt;
    if (txn_.rcpts == 0) return Reply::kNoValidRcpts;
    if (!arg.empty()) return Reply::kSyntaxData;
    if (bdat_open_ || txn_.bdat_total > 0) return Reply::kDataAfterBdat;
    return Reply::kCount;
  }
  if (!arg.empty()) return Reply::kSyntaxData;
  if (opts_->persona.rules.exim_sequence) {
    if (bdat_open_) return Reply::kDataAfterBdat;
    if (state_ == State::kFresh) return Reply::kNeedHelo;
    if (state_ != State::kMail || txn_.rcpts == 0) return Reply::kNeedRcpt;
  }
  if (state_ != State::kMail || txn_.rcpts == 0 || txn_.bdat_total > 0) {
    return state_ == State::kFresh  ? Reply::kNeedHelo
           : state_ == State::kMail ? Reply::kNeedRcpt
                                    : Reply::kNeedMail;
  }
  return Reply::kCount;
}

Reply ServerSession::CheckNoArgs(std::string_view arg) const {
  if (opts_->persona.rules.sendmail_sequence) return Reply::kCount;
  return arg.empty() ? Reply::kCount : Reply::kSyntaxNoArgs;
}

Reply ServerSession::CheckVrfy(std::string_view arg) const {
  if (opts_->persona.rules.exim_envelope) return Reply::kCount;  // EximVrfy
  if (opts_->persona.rules.sendmail_sequence) return SendmailCheckVrfy(arg);
  if (arg.empty()) return Reply::kSyntaxNoArgs;
  if (opts_->persona.rules.lenient_addresses) {
    // One address, optionally followed by SMTPUTF8 (Postfix).
    std::string_view addr, rest;
    SplitCommand(arg, &addr, &rest);
    if (!rest.empty() && !EqualsIgnoreCase(rest, "SMTPUTF8")) {
      return Reply::kBadRecipient;
    }
    if (addr.front() == '<' && (addr.back() != '>' || addr.size() < 2)) {
      return Reply::kBadRecipient;
    }
  }
  return Reply::kCount;
}

Reply ServerSession::CheckEtrn(std::string_view arg) const {
  const Rules& rules = opts_->persona.rules;
  if (rules.sendmail_sequence) {
    return arg.empty() ? Reply::kEtrnSyntax : Reply::kCount;
  }
  if (state_ == State::kFresh && rules.helo_required && !rules.exim_sequence) {
    return Reply::kNeedHelo;
  }
  if (state_ == State::kMail) return Reply::kEtrnInTransaction;
  std::string_view domain, rest;
  SplitCommand(arg, &domain, &rest);
  if (domain.empty() || !rest.empty()) return Reply::kEtrnSyntax;
  if (domain[0] == '@' || domain[0] == '#') domain.remove_prefix(1);
  if (domain.empty() || domain.size() > 255) return Reply::kEtrnBadDomain;
  for (unsigned char c : domain) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    if (!ok) return Reply::kEtrnBadDomain;
  }
  return Reply::kCount;
}

Reply ServerSession::CheckExpn(std::string_view arg) const {
  if (opts_->persona.rules.sendmail_sequence) return SendmailCheckVrfy(arg);
  return RefusedByPersona(*opts_, Reply::kExpn) ? Reply::kExpn : Reply::kCount;
}

Reply ServerSession::CheckHelp(std::string_view) const {
  return RefusedByPersona(*opts_, Reply::kHelp) ? Reply::kHelp : Reply::kCount;
}

Reply ServerSession::CheckStartTls(std::string_view arg) const {
  if (!arg.empty() && opts_->persona.rules.sendmail_sequence) {
    return Reply::kSyntaxNoArgs;  // srvrsmtp.c: the argument first
  }
  if (!opts_->starttls && !tls_active_) return Reply::kTlsNotAvailable;
  if (!arg.empty()) return Reply::kSyntaxNoArgs;
  if (tls_active_) return Reply::kTlsActive;
  if (!ehlo_ && opts_->persona.rules.exim_sequence) {
    return Reply::kTlsNotAdvertised;
  }
  if (state_ == State::kMail && !opts_->persona.rules.starttls_in_transaction) {
    return Reply::kBadSequenceTls;
  }
  return Reply::kCount;
}

// --- Proceeds ---------------------------------------------------------------

Action ServerSession::Helo(std::string_view arg, double) {
  ResetTransaction();
  bdat_open_ = false;
  declared_size_ = 0;
  peer::AddName(&facts_.helo_names, arg.substr(0, peer::kMaxNameLength));
  ehlo_ = false;
  EnterState(State::kGreeted);
  Append(Reply::kHelo, arg);
  return Action::kContinue;
}

Action ServerSession::Ehlo(std::string_view arg, double) {
  ResetTransaction();
  bdat_open_ = false;
  declared_size_ = 0;
  peer::AddName(&facts_.helo_names, arg.substr(0, peer::kMaxNameLength));
  ehlo_ = true;
  EnterState(State::kGreeted);
  AppendEhlo(arg);
  return Action::kContinue;
}

void ServerSession::AppendEhlo(std::string_view helo) {
  // A multi-line reply: "250-" on every line but the last, which is "250 ".
  std::string* out = &out_->bytes;
  const size_t start = out->size();
  size_t last_line = start;
  Append(Reply::kEhloFirst, helo);
  for (const auto& k : opts_->persona.ehlo_keywords) {
    const bool sendmail = opts_->persona.rules.sendmail_sequence;
    if (k.starts_with("AUTH") && !opts_->auth && !sendmail) continue;
    if (k == "STARTTLS" && (!opts_->starttls || tls_active_)) continue;
    // Exim offers PIPECONNECT only before a connection's first message (as
    // the real daemon does after one).
    if (k == "PIPECONNECT" && facts_.messages > 0) continue;
    last_line = out->size();
    out->append("250-");
    out->append(k);
    if (k == "SIZE" && !sendmail) {
      out->push_back(' ');
      out->append(std::to_string(opts_->max_message_size));
    }
    out->append("\r\n");
  }
  (*out)[last_line + 3] = ' ';
  out_->marks.back().end = uint32_t(out->size());  // one mark for all lines
  MarkSleeps(start);
}

Action ServerSession::Mail(std::string_view arg, double) {
  const Rules& rules = opts_->persona.rules;
  if (rules.exim_envelope) return EximMail(arg);
  if (rules.sendmail_sequence) return SendmailMail(arg);
  PathCommand pc;
  if (!ParsePathCommand(arg, "FROM:", &pc)) {
    // Postfix: a path it cannot parse is a bad address, not bad syntax.
    if (rules.lenient_addresses && HasPath(arg, "FROM:")) {
      return Error(Reply::kBadSender, {});
    }
    return Error(Reply::kSyntaxMail);
  }
  if (!pc.address.empty() && !MailboxOk(rules, pc.address)) {
    return Error(Reply::kBadSender, pc.address);
  }
  bool ret = false, envid = false, size_given = false;
  for (const auto& p : pc.params) {
    std::string_view shown = rules.whole_param_in_error ? p.token : p.keyword;
    if (EqualsIgnoreCase(p.keyword, "SIZE")) {
      uint64_t size;
      if (!ParseCount(p.value, &size)) return Error(Reply::kBadSize);
      size_given = true;
      if (rules.sticky_declared_size) declared_size_ = size;
      if (size > uint64_t(opts_->max_message_size)) {
        return SizeDeclined();
      }
    } else if (EqualsIgnoreCase(p.keyword, "BODY")) {
      if (!EqualsIgnoreCase(p.value, "7BIT") &&
          !EqualsIgnoreCase(p.value, "8BITMIME") &&
          (rules.eight_bit_only || !EqualsIgnoreCase(p.value, "BINARYMIME"))) {
        if (rules.sendmail_sequence) return Error(Reply::kBadBody, p.value);
        return Error(Reply::kBadParameter, shown);
      }
    } else if (EqualsIgnoreCase(p.keyword, "RET")) {
      // DSN (RFC 3461 4.3): accepted and ignored, as a discarding server.
      if (ret || (!EqualsIgnoreCase(p.value, "FULL") &&
                  !EqualsIgnoreCase(p.value, "HDRS"))) {
        return Error(Reply::kBadRet,
                     rules.sendmail_sequence ? p.value : std::string_view());
      }
      ret = true;
    } else if (EqualsIgnoreCase(p.keyword, "ENVID")) {
      if (envid || p.value.empty()) return Error(Reply::kBadEnvid);
      envid = true;
    } else if ((rules.sendmail_sequence ||  // 8.17 built without EAI
                !EqualsIgnoreCase(p.keyword, "SMTPUTF8")) &&
               !EqualsIgnoreCase(p.keyword, "AUTH") &&
               !EqualsIgnoreCase(p.keyword, "REQUIRETLS")) {
      return Error(Reply::kBadParameter, shown);
    }
  }
  if (!size_given && declared_size_ > uint64_t(opts_->max_message_size)) {
    return SizeDeclined();
  }
  return OpenTransaction(pc.address, rules.sendmail_sequence
                                         ? SendmailPath(arg.substr(5))
                                         : arg.substr(5));
}

Action ServerSession::OpenTransaction(std::string_view address,
                                      std::string_view shown) {
  std::string domain;
  AppendLower(&domain, DomainOf(address));
  peer::AddName(&facts_.mail_from_domains, address.empty() ? "<>" : domain);
  ++facts_.transactions;
  txn_ = Transaction{};
  if (opts_->tap != nullptr &&
      (capture_ ||
       opts_->tap->Sample({client_ip_, early_talker_, tarpitted_, &facts_}))) {
    if (!capture_) capture_ = std::make_unique<CapturedMessage>();
    capture_->mail_from.assign(address.substr(0, peer::kMaxAddressLength));
    capture_->rcpts.clear();
    capture_->raw.clear();
  }
  EnterState(State::kMail);
  Append(Reply::kMailOk, shown);
  return Action::kContinue;
}

Action ServerSession::Rcpt(std::string_view arg, double) {
  PathCommand pc;
  const Rules& rules = opts_->persona.rules;
  if (rules.exim_envelope) return EximRcpt(arg);
  if (rules.sendmail_sequence) return SendmailRcpt(arg);
  if (!ParsePathCommand(arg, "TO:", &pc)) {
    if (rules.lenient_addresses && HasPath(arg, "TO:")) {
      return Error(Reply::kBadRecipient, {});
    }
    return Error(Reply::kSyntaxRcpt);
  }
  if (!MailboxOk(rules, pc.address))
    return Error(Reply::kBadRecipient, pc.address);
  for (const auto& p : pc.params) {
    if (EqualsIgnoreCase(p.keyword, "NOTIFY")) {
      if (!ValidNotify(p.value)) return Error(Reply::kBadNotify);
    } else if (EqualsIgnoreCase(p.keyword, "ORCPT")) {
      size_t semi = p.value.find(';');
      if (semi == 0 || semi == std::string_view::npos ||
          semi + 1 == p.value.size()) {
        return Error(Reply::kBadOrcpt);
      }
    } else {
      return Error(Reply::kBadParameter,
                   rules.whole_param_in_error ? p.token : p.keyword);
    }
  }
  return AddRecipient(pc.address, rules.sendmail_sequence
                                      ? SendmailPath(arg.substr(3))
                                      : arg.substr(3));
}

Action ServerSession::AddRecipient(std::string_view address,
                                   std::string_view shown) {
  if (input_pending_ && !ehlo_ && opts_->persona.rules.exim_sequence) {
    // Exim re-checks synchronization after its RCPT ACL accepted, unless
    // PIPELINING was advertised.
    return Close(Reply::kSyncError, CloseReason::kTooManyErrors);
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
  AppendLower(&domain, DomainOf(address));
  peer::AddName(&facts_.rcpt_domains, domain);
  if (!opts_->trap_domains.empty()) NoteTrapRcpt(address, domain);
  if (capture_ && capture_->rcpts.size() < kMaxCapturedRcpts) {
    capture_->rcpts.emplace_back(address.substr(0, peer::kMaxAddressLength));
  }
  Append(Reply::kRcptOk, shown);
  return Action::kContinue;
}

void ServerSession::NoteTrapRcpt(std::string_view address,
                                 std::string_view domain) {
  const auto& traps = opts_->trap_domains;
  if (std::find(traps.begin(), traps.end(), domain) == traps.end()) return;
  if (facts_.trap_rcpts.size() >= peer::kMaxTrapRcpts ||
      address.size() > peer::kMaxAddressLength) {
    return;
  }
  std::string lower;
  AppendLower(&lower, address);
  auto& seen = facts_.trap_rcpts;
  if (std::find(seen.begin(), seen.end(), lower) == seen.end()) {
    seen.push_back(std::move(lower));
  }
}

Action ServerSession::Rset(std::string_view, double) {
  ResetTransaction();
  bdat_open_ = false;
  declared_size_ = 0;
  Append(Reply::kRset);
  return Action::kContinue;
}

Action ServerSession::Noop(std::string_view, double) {
  Append(Reply::kNoop);
  return Action::kContinue;
}

Action ServerSession::Quit(std::string_view, double) {
  if (bdat_open_ && opts_->persona.rules.exim_sequence) {
    // Exim's bdat_getc() answers QUIT and returns EOF to receive_msg(),
    // which then reports the message lost.
    Append(Reply::kQuit);
    return Close(Reply::kLostInBdat, CloseReason::kQuit);
  }
  return Close(Reply::kQuit, CloseReason::kQuit);
}

Action ServerSession::Vrfy(std::string_view arg, double) {
  if (opts_->persona.rules.exim_envelope) return EximVrfy(arg);
  if (opts_->persona.rules.sendmail_sequence) return SendmailVrfy(arg);
  Append(Reply::kVrfy, arg);
  return Action::kContinue;
}

Action ServerSession::Expn(std::string_view arg, double) {
  if (opts_->persona.rules.sendmail_sequence) return SendmailVrfy(arg);
  Append(Reply::kExpn, arg);
  return Action::kContinue;
}

Action ServerSession::Help(std::string_view arg, double) {
  if (opts_->persona.rules.sendmail_sequence) return SendmailHelp(arg);
  size_t start = out_->bytes.size();
  Append(Reply::kHelp, arg);
  if (tls_active_ || !opts_->starttls) {
    // The list names STARTTLS only while it is offered (Exim).
    size_t at = out_->bytes.find(" STARTTLS", start);
    if (at != std::string::npos) {
      out_->bytes.erase(at, 9);
      out_->marks.back().end -= 9;
    }
  }
  return Action::kContinue;
}

Action ServerSession::Etrn(std::string_view arg, double) {
  if (opts_->persona.rules.sendmail_sequence) return SendmailEtrn(arg);
  std::string_view domain = arg;
  if (domain[0] == '@' || domain[0] == '#') domain.remove_prefix(1);
  return Error(Reply::kEtrn, domain);
}

Action ServerSession::StartTls(std::string_view, double) {
  Append(Reply::kStartTls);
  return Action::kStartTls;
}

// At debug level, one line per command with the first 80 bytes of its
// reply, never the argument itself.
Action ServerSession::Dispatch(std::string_view line, double wall) {
  if (!base::LogEnabled(base::LogLevel::kDebug)) return Execute(line, wall);
  const size_t before = out_->bytes.size();
  Action a = Execute(line, wall);
  std::string_view verb, arg;
  SplitCommand(line, &verb, &arg);
  std::string_view reply = out_->bytes;
  reply = before <= reply.size() ? reply.substr(before) : std::string_view();
  reply = reply.substr(0, std::min(reply.find("\r\n"), size_t(80)));
  base::LogLine(base::LogLevel::kDebug, "smtp_command")
      .Kv("client", client_ip_)
      .Kv("verb", verb.substr(0, 16))
      .Kv("arg_bytes", uint64_t(arg.size()))
      .Kv("reply", reply)
      .Kv("state", StateName(state_));
  return a;
}

// A declared SIZE= over smtp.max_message_size: counted as a limit hit.
Action ServerSession::SizeDeclined() {
  ++events_->too_big;
  ++events_->limits_hit;
  ++facts_.limits_hit;
  return Error(Reply::kSizeDeclined);
}

}  // namespace smtp
