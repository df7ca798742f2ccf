#include "smtp/exim_envelope.h"

namespace smtp {
namespace {

constexpr size_t kMaxAddress = 255;  // Exim's ADDRESS_MAXLENGTH

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// An atom character: printable (or 8-bit), not blank, not a special.
bool IsAtom(unsigned char c) {
  if (c <= ' ' || c == 0x7f) return false;
  for (char s : std::string_view("()<>@,;:\\\".[]")) {
    if (c == static_cast<unsigned char>(s)) return false;
  }
  return true;
}

struct Cursor {
  std::string_view s;
  size_t p = 0;
  char at() const { return p < s.size() ? s[p] : '\0'; }
  bool end() const { return p >= s.size(); }
  void SkipBlanks() {
    while (p < s.size() && IsBlank(s[p])) ++p;
  }
};

// A word: an atom or a quoted string. False if there is none here.
bool ReadWord(Cursor* c) {
  size_t start = c->p;
  if (c->at() == '"') {
    for (++c->p; !c->end() && c->at() != '"'; ++c->p) {
      if (c->at() == '\\') ++c->p;
    }
    if (c->end()) return false;
    ++c->p;
    return true;
  }
  while (!c->end() && IsAtom(static_cast<unsigned char>(c->at()))) ++c->p;
  return c->p > start;
}

// Dot-separated words; blanks after it skipped.
bool ReadLocalPart(Cursor* c) {
  while (true) {
    if (!ReadWord(c)) return false;
    if (c->at() != '.') break;
    ++c->p;
  }
  c->SkipBlanks();
  return true;
}

// After '@': a dot-separated domain. Returns the error text or "".
std::string ReadDomain(Cursor* c) {
  if (c->at() == '[') return "domain literals not allowed";
  while (true) {
    size_t start = c->p;
    while (!c->end() && IsAtom(static_cast<unsigned char>(c->at()))) ++c->p;
    if (c->p == start) return "domain missing or malformed";
    if (c->at() != '.') break;
    ++c->p;
  }
  c->SkipBlanks();
  return "";
}

std::string MayNotFollow(const Cursor& c) {
  std::string e = "malformed address: ";
  e.append(c.s.substr(c.p, 32));
  e.append(" may not follow ");
  e.append(c.s.substr(0, c.p));
  return e;
}

// local-part [@ domain], ending at term ('>' or the end); on success the
// mailbox spans [*start, c->p) before trailing blanks.
std::string ReadAddrSpec(Cursor* c, char term, EximAddress* a) {
  size_t start = c->p;
  if (!ReadLocalPart(c)) return "missing or malformed local part";
  size_t local_end = c->p;
  while (local_end > start && IsBlank(c->s[local_end - 1])) --local_end;
  if (c->at() == '@') {
    ++c->p;
    std::string e = ReadDomain(c);
    if (!e.empty()) return e;
    a->has_domain = true;
  } else if (c->at() != term && !(term == '>' && c->end())) {
    return "\"@\" or \".\" expected after \"" +
           std::string(c->s.substr(start, local_end - start)) + "\"";
  }
  size_t end = c->p;
  while (end > start && IsBlank(c->s[end - 1])) --end;
  a->mailbox = c->s.substr(start, end - start);
  return "";
}

}  // namespace

bool EximTakeOption(std::string_view* data, EximOption* opt) {
  std::string_view d = *data;
  while (!d.empty() && IsBlank(d.back())) d.remove_suffix(1);
  if (d.empty()) return false;
  size_t v = d.size() - 1;
  while (v > 0 && d[v] != '=' && !IsBlank(d[v])) {
    if (d[v] == '"') {  // a quoted string with blanks is not an option
      do --v;
      while (v > 0 && d[v] != '"');
      if (v == 0) return false;
    }
    --v;
  }
  if (v == 0) return false;
  if (d[v] == '=') {
    size_t n = v;
    while (n > 0 && IsAlpha(d[n - 1])) --n;
    if (n == 0 || !IsBlank(d[n - 1])) return false;
    opt->name = d.substr(n, v - n);
    opt->value = d.substr(v + 1);
    *data = d.substr(0, n - 1);
    return true;
  }
  opt->name = opt->value = d.substr(v + 1);
  *data = d.substr(0, v);
  return true;
}

EximAddress EximParseAddress(std::string_view s, bool allow_null) {
  EximAddress a;
  Cursor c{s};
  c.SkipBlanks();
  if (c.at() != '<') {
    size_t start = c.p;
    bool word = ReadLocalPart(&c);
    if (!word && c.at() != '<' && c.at() != '@') {
      a.error = c.end() && c.p == start ? "empty address"
                                        : "missing or malformed local part";
      return a;
    }
    if (c.end()) {  // a bare local part
      a.mailbox = s.substr(start, c.p - start);
      while (!a.mailbox.empty() && IsBlank(a.mailbox.back())) {
        a.mailbox.remove_suffix(1);
      }
    } else if (c.at() == '@') {
      c.p = start;
      a.error = ReadAddrSpec(&c, '\0', &a);
      if (!a.error.empty()) return a;
    } else {
      // A phrase: words until '<'.
      while (c.at() != '<') {
        if (!ReadLocalPart(&c)) {
          a.error = "missing or malformed local part (expected word or \"<\")";
          return a;
        }
      }
    }
  }
  if (c.at() == '<') {
    ++c.p;
    c.SkipBlanks();
    bool routed = false;
    if (c.at() == '@') {  // a source route, ignored
      size_t colon = s.find(':', c.p);
      if (colon == std::string_view::npos) {
        a.error = "colon expected after route";
        return a;
      }
      c.p = colon + 1;
      routed = true;
    }
    if (allow_null && !routed && c.at() == '>') {
      a.null = true;
    } else {
      a.error = ReadAddrSpec(&c, '>', &a);
      if (!a.error.empty()) return a;
      if (routed && !a.has_domain) {
        a.error = "domain missing in source-routed address";
        return a;
      }
    }
    if (c.end()) {
      a.error = "'>' missing at end of address";
      return a;
    }
    if (c.at() != '>') {
      a.error = MayNotFollow(c);
      return a;
    }
    ++c.p;
    c.SkipBlanks();
  }
  if (!c.end()) {
    a.error = MayNotFollow(c);
    return a;
  }
  if (a.mailbox.size() > kMaxAddress) {
    a.error = "address is ridiculously long: " +
              std::string(a.mailbox.substr(0, 64)) + "...";
  }
  return a;
}

}  // namespace smtp
