#include "smtp/command.h"

#include <cstdint>

namespace smtp {
namespace {
char Lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }
// White space between words, as Postfix's smtpd_token() (isspace).
bool Blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}
std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && Blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && Blank(s.back())) s.remove_suffix(1);
  return s;
}
}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

void SplitCommand(std::string_view line, std::string_view* verb,
                  std::string_view* arg) {
  line = TrimSpaces(line);
  auto sp = line.find_first_of(" \t\r\v\f");
  if (sp == std::string_view::npos) {
    *verb = line;
    *arg = {};
  } else {
    *verb = line.substr(0, sp);
    *arg = TrimSpaces(line.substr(sp + 1));
  }
}

bool ParsePathCommand(std::string_view arg, std::string_view prefix,
                      PathCommand* out) {
  if (arg.size() < prefix.size() ||
      !EqualsIgnoreCase(arg.substr(0, prefix.size()), prefix)) {
    return false;
  }
  arg = TrimSpaces(arg.substr(prefix.size()));
  std::string_view rest;
  if (!arg.empty() && arg.front() == '<') {
    auto close = arg.find('>');
    if (close == std::string_view::npos) return false;
    out->address = arg.substr(1, close - 1);
    rest = arg.substr(close + 1);
    if (!rest.empty() && rest.front() != ' ') return false;
  } else {
    auto sp = arg.find(' ');
    out->address = arg.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : arg.substr(sp);
    if (out->address.empty()) return false;
  }
  // Source route "@a,@b:user@c" (RFC 5321 4.1.2): keep the mailbox only.
  if (!out->address.empty() && out->address.front() == '@') {
    auto colon = out->address.find(':');
    if (colon == std::string_view::npos) return false;
    out->address.remove_prefix(colon + 1);
  }
  out->params.clear();
  rest = TrimSpaces(rest);
  while (!rest.empty()) {
    auto sp = rest.find(' ');
    std::string_view tok = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view()
                                        : TrimSpaces(rest.substr(sp));
    auto eq = tok.find('=');
    Param p;
    p.token = tok;
    p.keyword = tok.substr(0, eq);
    if (eq != std::string_view::npos) p.value = tok.substr(eq + 1);
    if (p.keyword.empty() || out->params.size() >= 16) return false;
    out->params.push_back(p);
  }
  return true;
}

bool ValidMailbox(std::string_view address) {
  if (address.empty() || address.size() > 256) return false;
  for (unsigned char c : address) {
    if (c <= ' ' || c == 0x7f || c == '<' || c == '>') return false;
  }
  if (address.find('@') == std::string_view::npos) {
    return EqualsIgnoreCase(address, "postmaster");
  }
  return address.front() != '@' && address.back() != '@';
}

bool LenientMailbox(std::string_view address) {
  if (address.empty()) return false;
  bool quoted = false;
  for (unsigned char c : address) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c < ' ' || c == 0x7f ||
               (!quoted && (c == ' ' || c == '<' || c == '>'))) {
      return false;
    }
  }
  return !quoted;
}

std::string_view DomainOf(std::string_view address) {
  auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view()
                                      : address.substr(at + 1);
}

bool ParseCount(std::string_view text, uint64_t* out) {
  if (text.empty() || text.size() > 19) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint64_t(c - '0');
  }
  *out = v;
  return true;
}

bool ValidNotify(std::string_view v, std::string_view* bad) {
  if (EqualsIgnoreCase(v, "NEVER")) return true;
  while (true) {
    size_t comma = v.find(',');
    std::string_view w = v.substr(0, comma);
    if (!EqualsIgnoreCase(w, "SUCCESS") && !EqualsIgnoreCase(w, "FAILURE") &&
        !EqualsIgnoreCase(w, "DELAY")) {
      if (bad != nullptr) *bad = w;
      return false;
    }
    if (comma == std::string_view::npos) return true;
    v.remove_prefix(comma + 1);
  }
}

}  // namespace smtp
