// Rules::sendmail_sequence: where Sendmail 8.17.1.9 (srvrsmtp.c, with
// Debian 12's sendmail.mc) reads or answers commands otherwise than the
// table's defaults, as the private real Sendmail of
// tests/differential/test_sendmail.py showed it.
#include "smtp/command.h"
#include "smtp/server_session.h"

namespace smtp {
namespace {

// srvrsmtp.c's MAXNAME: a HELO name longer is refused.
constexpr size_t kMaxHeloName = 256;
// util.c's MAXSHORTSTR: shortenstring() keeps the first and last
// (203 - 3) / 2 octets of a longer string, joined by "...".
constexpr size_t kMaxShortStr = 203;

bool IsAlnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

}  // namespace

// The whole line as Sendmail echoes it: shortened like shortenstring(),
// then sanitised and bounded again by Append's {text}.
std::string ServerSession::SendmailEcho(std::string_view line) {
  if (line.size() < kMaxShortStr) return std::string(line);
  const size_t half = (kMaxShortStr - 3) / 2;
  std::string s(line.substr(0, half));
  s.append("...");
  s.append(line.substr(line.size() - half));
  return s;
}

// "<a@b>" of "FROM:<a@b> SIZE=1" (or the first word without brackets):
// Sendmail's "... Sender ok" shows the address, not the parameters.
std::string_view ServerSession::SendmailPath(std::string_view after_colon) {
  while (!after_colon.empty() && after_colon.front() == ' ') {
    after_colon.remove_prefix(1);
  }
  size_t end = after_colon.front() == '<' ? after_colon.find('>')
                                          : after_colon.find(' ');
  if (end == std::string_view::npos) return after_colon;
  return after_colon.substr(0, after_colon.front() == '<' ? end + 1 : end);
}

bool ServerSession::Unoffered(Action (ServerSession::*proceed)(std::string_view,
                                                               double)) const {
  const auto& text = opts_->persona.replies;
  if (proceed == &ServerSession::Etrn) return text[int(Reply::kEtrn)].empty();
  if (proceed == &ServerSession::Verb) return text[int(Reply::kVerb)].empty();
  // No CHUNKING in Sendmail's EHLO: BDAT is unknown and its chunk is read
  // as command lines.
  return proceed == &ServerSession::Bdat &&
         opts_->persona.rules.sendmail_sequence;
}

// srvrsmtp.c: letters, digits and "[].-_#:", trailing blanks allowed.
Reply ServerSession::SendmailCheckHelo(std::string_view arg,
                                       Reply empty) const {
  if (arg.empty()) return empty;
  if (arg.size() > kMaxHeloName) return Reply::kBadHeloName;
  size_t i = 0;
  for (; i < arg.size(); ++i) {
    unsigned char c = arg[i];
    if (IsAlnum(c) || (c != 0 && std::string_view("[].-_#:").find(char(c)) !=
                                     std::string_view::npos)) {
      continue;
    }
    if (c != ' ' && c != '\t') return Reply::kBadHeloName;
    break;
  }
  for (; i < arg.size(); ++i) {
    if (arg[i] != ' ' && arg[i] != '\t') return Reply::kBadHeloName;
  }
  return Reply::kCount;
}

// Debian's PrivacyOptions (needvrfyhelo, needexpnhelo): HELO first.
Reply ServerSession::SendmailCheckVrfy(std::string_view arg) const {
  if (state_ == State::kFresh) return Reply::kVrfyNeedHelo;
  if (arg.empty()) return Reply::kArgRequired;
  return Reply::kCount;
}

// Sendmail's answer names the address it would deliver to: a bare local
// part qualified with the host name (250: local), else 252.
Action ServerSession::SendmailVrfy(std::string_view arg) {
  std::string_view addr = SendmailPath(arg);
  if (addr.size() >= 2 && addr.front() == '<' && addr.back() == '>') {
    addr = addr.substr(1, addr.size() - 2);
  }
  if (addr.find('@') != std::string_view::npos) {
    Append(Reply::kVrfyRemote, addr);
    return Action::kContinue;
  }
  Append(Reply::kVrfyLocal, addr);  // "<{arg}@host>": host expanded
  return Action::kContinue;
}

// "250 2.0.0 Queuing for node <arg> started": not an error.
Action ServerSession::SendmailEtrn(std::string_view arg) {
  Append(Reply::kEtrn, arg);
  return Action::kContinue;
}

Action ServerSession::Verb(std::string_view, double) {
  Append(Reply::kVerb);
  return Action::kContinue;
}

}  // namespace smtp
