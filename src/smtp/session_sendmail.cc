// Rules::sendmail_sequence: where Sendmail 8.17.1.9 (srvrsmtp.c, with
// Debian 12's sendmail.mc) reads or answers commands otherwise than the
// table's defaults, as the private real Sendmail of
// tests/differential/test_sendmail.py showed it.
#include "smtp/command.h"
#include "smtp/sendmail_help.h"
#include "smtp/server_session.h"

namespace smtp {
namespace {

// srvrsmtp.c's MAXNAME: a HELO name longer is refused.
constexpr size_t kMaxHeloName = 256;
// util.c's MAXSHORTSTR: shortenstring() keeps the first and last
// (203 - 3) / 2 octets of a longer string, joined by "...".
constexpr size_t kMaxShortStr = 203;

// auth_steps_ while a Sendmail AUTH challenge waits for its response: one
// step, and whether the client had not said HELO yet (the state to go back
// to). Sessions in State::kAuth are never parked.
constexpr uint8_t kAuthStep = 1, kAuthFromFresh = 0x80;

constexpr std::string_view kBase64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) n |= uint32_t(uint8_t(in[i + 1])) << 8;
    if (i + 2 < in.size()) n |= uint8_t(in[i + 2]);
    out.push_back(kBase64[n >> 18]);
    out.push_back(kBase64[(n >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kBase64[(n >> 6) & 63] : '=');
    out.push_back(i + 2 < in.size() ? kBase64[n & 63] : '=');
  }
  return out;
}

// What Cyrus SASL's sasl_decode64() accepts: groups of four, '=' only as
// the padding of the last group. Empty is valid (an empty response).
bool IsBase64(std::string_view s) {
  if (s.size() % 4 != 0) return false;
  size_t pad = 0;
  while (pad < 2 && pad < s.size() && s[s.size() - 1 - pad] == '=') ++pad;
  for (size_t i = 0; i < s.size() - pad; ++i) {
    if (kBase64.find(s[i]) == std::string_view::npos) return false;
  }
  return true;
}

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

// Improper pipelining (what the real 8.17.1.9 answered in the differential
// corpus): HELO or EHLO with more input already behind it, before any EHLO
// offered PIPELINING, gets kPregreetHelo and turns the session into
// Sendmail's "nullserver": from then on every command but HELO, EHLO, NOOP,
// RSET and QUIT gets kPregreetRejected; unknown verbs keep their answer.
Reply ServerSession::SendmailPregreet(
    Action (ServerSession::*proceed)(std::string_view, double)) {
  using S = ServerSession;
  if (!opts_->persona.rules.sendmail_sequence) return Reply::kCount;
  const bool hello = proceed == &S::Helo || proceed == &S::Ehlo;
  if (null_server_) {
    const bool passes = hello || proceed == &S::Noop || proceed == &S::Rset ||
                        proceed == &S::Quit;
    return passes ? Reply::kCount : Reply::kPregreetRejected;
  }
  if (hello && input_pending_ && !ehlo_) {
    null_server_ = true;
    return Reply::kPregreetHelo;
  }
  return Reply::kCount;
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

// A local name Sendmail knows, as a stock Debian 12 host has them: the
// aliases of Debian's /etc/aliases (shown bare) and the accounts of its
// base-passwd (shown with their full name); else nullptr.
const char* ServerSession::SendmailLocalUser(std::string_view name) {
  static constexpr std::pair<std::string_view, const char*> kUsers[] = {
      {"postmaster", ""},
      {"mailer-daemon", ""},
      {"root", "root "},
      {"daemon", "daemon "},
      {"bin", "bin "},
      {"sys", "sys "},
      {"sync", "sync "},
      {"games", "games "},
      {"man", "man "},
      {"lp", "lp "},
      {"mail", "mail "},
      {"news", "news "},
      {"uucp", "uucp "},
      {"proxy", "proxy "},
      {"www-data", "www-data "},
      {"backup", "backup "},
      {"list", "Mailing List Manager "},
      {"irc", "ircd "},
      {"nobody", "nobody "},
      {"_apt", ""}};
  for (const auto& [user, full] : kUsers) {
    if (EqualsIgnoreCase(name, user)) return full;
  }
  return nullptr;
}

// Sendmail's answer names the address it would deliver to: blanks become
// '.' (BlankSub); a bare local part or one in the host's own domain is
// looked up (SendmailLocalUser: "250 2.1.5 [full name ]<user@host>", else
// "550 5.1.1 <as written>... User unknown"); any other address gets 252.
Action ServerSession::SendmailVrfy(std::string_view arg) {
  while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
  while (!arg.empty() && arg.back() == ' ') arg.remove_suffix(1);
  std::string_view bare = arg;
  if (bare.size() >= 2 && bare.front() == '<' && bare.back() == '>') {
    bare = bare.substr(1, bare.size() - 2);
  }
  std::string addr(bare);
  for (char& c : addr) c = c == ' ' ? '.' : c;
  const size_t at = addr.rfind('@');
  if (at != std::string::npos &&
      !EqualsIgnoreCase(std::string_view(addr).substr(at + 1),
                        opts_->persona.host)) {
    Append(Reply::kVrfyRemote, addr);
    return Action::kContinue;
  }
  const std::string user = addr.substr(0, at);
  const char* full = SendmailLocalUser(user);
  if (full == nullptr) {
    Append(Reply::kUserUnknown, arg);
    return Action::kContinue;
  }
  Append(Reply::kVrfyLocal,
         std::string(full) + "<" + user + "@" + opts_->persona.host + ">");
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

// help(): the topic is the whole argument in lower case ("mail from" is
// unknown); its lines, or a 504 (not counted as an error).
Action ServerSession::SendmailHelp(std::string_view arg) {
  while (!arg.empty() && (arg.front() == ' ' || arg.front() == '\t')) {
    arg.remove_prefix(1);
  }
  std::string topic;
  for (char c : arg) topic.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
  if (topic.empty() || topic == "smtp") {
    Append(Reply::kHelp);
    return Action::kContinue;
  }
  std::string_view text = SendmailHelpTopic(topic);
  if (text.empty()) {
    Append(Reply::kHelpUnknown, topic);
    return Action::kContinue;
  }
  std::string lines;  // "text\r\n214-2.0.0 text ... End of HELP info"
  for (size_t nl; (nl = text.find('\n')) != std::string_view::npos;
       text.remove_prefix(nl + 1)) {
    lines.append(text.substr(0, nl)).append("\r\n214-2.0.0 ");
  }
  lines[lines.size() - 7] = ' ';  // the last line's "214-" -> "214 "
  lines.append("End of HELP info");
  Append(Reply::kHelpTopic, lines);
  return Action::kContinue;
}

// srvrsmtp.c's CMDUNIMPL verbs: the line echoed as for an unknown one.
Action ServerSession::SendmailUnknown(std::string_view verb,
                                      std::string_view line) {
  line = line.substr(0, line.find('\0'));  // a C string: echoed to a NUL
  for (std::string_view v : {"SEND", "SAML", "SOML", "TURN"}) {
    if (EqualsIgnoreCase(verb, v)) {
      return Error(Reply::kNotImplemented, SendmailEcho(line));
    }
  }
  return Error(Reply::kUnknown, SendmailEcho(line));
}

// srvrsmtp.c's CMDAUTH order: inside a transaction, then no mechanism. No
// HELO needed.
Reply ServerSession::SendmailCheckAuth(std::string_view arg) const {
  if (state_ == State::kMail) return Reply::kAuthInTransaction;
  if (arg.empty()) return Reply::kAuthNoMech;
  return Reply::kCount;
}

// Debian's Sendmail offers DIGEST-MD5 and CRAM-MD5 (Cyrus SASL, no users):
// their challenges as Cyrus makes them, then every response fails.
Action ServerSession::SendmailAuth(std::string_view arg) {
  std::string_view mech, initial;
  SplitCommand(arg, &mech, &initial);
  const bool cram = EqualsIgnoreCase(mech, "CRAM-MD5");
  if (!cram && !EqualsIgnoreCase(mech, "DIGEST-MD5")) {
    return Error(Reply::kAuthMechUnavailable, mech.substr(0, 32));
  }
  if (!initial.empty()) {  // "=": an empty initial response
    if (initial != "=" && !IsBase64(initial)) {
      return Error(Reply::kAuthBadInitial, initial);
    }
    return Error(Reply::kAuthFailed);
  }
  std::string challenge;
  if (cram) {  // "<random.clock@host>"
    challenge = "<" + std::to_string(uint32_t(ids_.Draw())) + "." +
                std::to_string(100000 + ids_.Draw() % 900000) + "@" +
                opts_->persona.host + ">";
  } else {  // a 32-octet nonce
    std::string nonce;
    for (int i = 0; i < 4; ++i) {
      uint64_t n = ids_.Draw();
      nonce.append(reinterpret_cast<const char*>(&n), sizeof n);
    }
    challenge = "nonce=\"" + Base64(nonce) + "\",realm=\"" +
                opts_->persona.host +
                "\",qop=\"auth,auth-int,auth-conf\",cipher=\"rc4-40,rc4-56,"
                "rc4,des,3des\",maxbuf=8192,charset=utf-8,algorithm=md5-sess";
  }
  auth_steps_ = kAuthStep | (state_ == State::kFresh ? kAuthFromFresh : 0);
  Append(Reply::kAuthChallenge, Base64(challenge));
  EnterState(State::kAuth);
  return Action::kContinue;
}

Action ServerSession::SendmailAuthResponse(std::string_view line) {
  const bool fresh = auth_steps_ & kAuthFromFresh;
  auth_steps_ = 0;
  EnterState(fresh ? State::kFresh : State::kGreeted);
  if (line == "*") return Error(Reply::kAuthAborted);
  if (!IsBase64(line)) return Error(Reply::kAuthBadResponse, line);
  return Error(Reply::kAuthFailed);
}

}  // namespace smtp
