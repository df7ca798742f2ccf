// Rules::sendmail_sequence: MAIL and RCPT as Sendmail 8.17.1.9 reads them
// (srvrsmtp.c's skipword(), parseaddr.c's prescan(), the ESMTP parameter
// checks of mail_esmtp_args() and rcpt_esmtp_args()), as the private real
// Sendmail of tests/differential/test_sendmail.py showed them. Sendmail is
// lenient: a bare word, spaces inside brackets and quotes are addresses.
#include "smtp/command.h"
#include "smtp/server_session.h"

namespace smtp {
namespace {

// prescan(): a token (a run between the address specials) this long or
// longer is refused ("prescan: token too long").
constexpr size_t kMaxToken = 256;

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// The parts of "FROM:<a@b> SIZE=1": the word before the colon (shown in the
// syntax error), the path as written, the parameters after it.
struct SendmailEnvelope {
  std::string_view word, path, params;
};

// skipword(): the word up to ':' or a blank must be `expected` and be
// followed by ':' and something. Returns false on a syntax error.
bool SplitEnvelope(std::string_view arg, std::string_view expected,
                   SendmailEnvelope* e) {
  size_t i = 0;
  while (i < arg.size() && IsSpace(arg[i])) ++i;
  const size_t start = i;
  while (i < arg.size() && arg[i] != ':' && !IsSpace(arg[i])) ++i;
  e->word = arg.substr(start, i - start);
  while (i < arg.size() && IsSpace(arg[i])) ++i;
  if (i == arg.size() || arg[i] != ':') return false;
  ++i;
  while (i < arg.size() && IsSpace(arg[i])) ++i;
  if (i == arg.size() || !EqualsIgnoreCase(e->word, expected)) return false;
  std::string_view rest = arg.substr(i);
  size_t end = 0;
  if (rest[0] == '<') {  // to the matching '>' (nesting counted)
    int depth = 0;
    for (; end < rest.size(); ++end) {
      if (rest[end] == '<') ++depth;
      if (rest[end] == '>' && --depth == 0) break;
    }
    end = end == rest.size() ? end : end + 1;
    while (end < rest.size() && !IsSpace(rest[end])) ++end;  // "<a@b>>"
  } else {
    while (end < rest.size() && !IsSpace(rest[end])) ++end;
  }
  e->path = rest.substr(0, end);
  e->params = rest.substr(end);
  return true;
}

// prescan()'s complaints about a path, or empty: unbalanced brackets or
// quotes (the reply names the character).
std::string_view Unbalanced(std::string_view path) {
  int depth = 0;
  bool quoted = false;
  for (char c : path) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == '<') ++depth;
    if (c == '>' && --depth < 0) return "'>'";
  }
  if (quoted) return "'\"'";
  if (depth > 0) return "'<'";
  return {};
}

bool TokenTooLong(std::string_view path) {
  size_t run = 0;
  for (char c : path) {
    if (std::string_view("<>@.:,;\"[]()\\ \t").find(c) !=
        std::string_view::npos) {
      run = 0;
    } else if (++run >= kMaxToken) {
      return true;
    }
  }
  return false;
}

// The address inside the path: brackets and a source route removed.
std::string_view AddressOf(std::string_view path) {
  while (path.size() >= 2 && path.front() == '<' && path.back() == '>') {
    path = path.substr(1, path.size() - 2);
  }
  if (!path.empty() && path.front() == '@') {
    size_t colon = path.find(':');
    if (colon != std::string_view::npos) path.remove_prefix(colon + 1);
  }
  return path;
}

// Sendmail reads commands as 7-bit text: the echo has the high bit cleared.
std::string SevenBit(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(c & 0x7f);
  return out;
}

// The next "KEY=value" of a parameter list.
bool NextParam(std::string_view* rest, Param* p) {
  while (!rest->empty() && IsSpace(rest->front())) rest->remove_prefix(1);
  if (rest->empty()) return false;
  size_t end = 0;
  while (end < rest->size() && !IsSpace((*rest)[end])) ++end;
  p->token = rest->substr(0, end);
  rest->remove_prefix(end);
  size_t eq = p->token.find('=');
  p->keyword = p->token.substr(0, eq);
  p->value = eq == std::string_view::npos ? std::string_view()
                                          : p->token.substr(eq + 1);
  return true;
}

}  // namespace

// The reply to a path Sendmail refuses, or Reply::kCount; *shown is what
// it shows (the path, or the rest of the line for an unbalanced '<').
Reply ServerSession::SendmailCheckPath(std::string_view path,
                                       std::string* shown) const {
  if (std::string_view u = Unbalanced(path); !u.empty()) {
    *shown = SevenBit(path) + "... Unbalanced " + std::string(u);
    return Reply::kBadPath;
  }
  if (TokenTooLong(path)) {
    *shown = SendmailEcho(SevenBit(path));
    return Reply::kLongToken;
  }
  *shown = SevenBit(path);
  return Reply::kCount;
}

Action ServerSession::SendmailMail(std::string_view arg) {
  SendmailEnvelope e;
  if (!SplitEnvelope(arg, "FROM", &e)) return Error(Reply::kSyntaxMail, e.word);
  std::string shown;
  if (Reply r = SendmailCheckPath(e.path, &shown); r != Reply::kCount) {
    return Error(r, shown);
  }
  std::string_view rest = e.params;
  Param p;
  while (NextParam(&rest, &p)) {
    if (EqualsIgnoreCase(p.keyword, "SIZE")) {
      uint64_t size;  // not a number: strtol()'s 0, accepted
      if (ParseCount(p.value, &size) &&
          size > uint64_t(opts_->max_message_size)) {
        return SizeDeclined();
      }
    } else if (EqualsIgnoreCase(p.keyword, "BODY")) {
      if (!EqualsIgnoreCase(p.value, "7BIT") &&
          !EqualsIgnoreCase(p.value, "8BITMIME")) {
        return Error(Reply::kBadBody, p.value);
      }
    } else if (EqualsIgnoreCase(p.keyword, "RET")) {
      if (!EqualsIgnoreCase(p.value, "FULL") &&
          !EqualsIgnoreCase(p.value, "HDRS")) {
        return Error(Reply::kBadRet, p.value);
      }
    } else if (!EqualsIgnoreCase(p.keyword, "ENVID") &&
               !EqualsIgnoreCase(p.keyword, "AUTH")) {
      return Error(Reply::kBadParameter, p.keyword);
    }
  }
  return OpenTransaction(AddressOf(e.path), shown);
}

Action ServerSession::SendmailRcpt(std::string_view arg) {
  SendmailEnvelope e;
  if (!SplitEnvelope(arg, "TO", &e)) return Error(Reply::kSyntaxRcpt, e.word);
  std::string shown;
  if (Reply r = SendmailCheckPath(e.path, &shown); r != Reply::kCount) {
    return Error(r, shown);
  }
  const std::string_view address = AddressOf(e.path);
  if (address.empty()) return Error(Reply::kBadRecipient, shown);
  // A bare local part is a local user: unknown ones are refused (the
  // host's own address literal is not recognised: docs/PERSONAS.md).
  if (address.find('@') == std::string_view::npos &&
      SendmailLocalUser(address) == nullptr) {
    return Error(Reply::kUserUnknown, shown);
  }
  std::string_view rest = e.params;
  Param p;
  while (NextParam(&rest, &p)) {
    std::string_view bad;
    if (EqualsIgnoreCase(p.keyword, "NOTIFY")) {
      if (!ValidNotify(p.value, &bad)) return Error(Reply::kBadNotify, bad);
    } else if (EqualsIgnoreCase(p.keyword, "ORCPT")) {
      if (p.value.find(';') == std::string_view::npos) {
        return Error(Reply::kBadOrcpt);
      }
    } else {
      return Error(Reply::kBadParameter, p.keyword);
    }
  }
  return AddRecipient(address, shown);
}

}  // namespace smtp
