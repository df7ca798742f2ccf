#include "traps/site.h"

#include <cmath>
#include <fstream>

namespace traps {
namespace {

constexpr size_t kMaxPath = 1024;
constexpr size_t kMaxSegment = 40;
constexpr int kMaxDepth = 32;
constexpr size_t kMaxWords = 100000;

constexpr const char* kFirst[] = {
    "alice", "brian", "carol",  "david", "emma",   "frank",  "grace",
    "henry", "irene", "jack",   "karen", "louis",  "maria",  "nathan",
    "olga",  "peter", "rachel", "simon", "tina",   "victor", "wendy",
    "yusuf", "agnes", "bruno",  "clara", "dennis", "elena",  "felix",
    "gina",  "hugo",  "ines",   "jonas", "kevin",  "laura",  "martin",
    "nina",  "oscar", "paula",  "quinn", "rosa",   "stefan", "ursula"};
constexpr const char* kLast[] = {
    "smith",    "meyer",  "garcia", "novak",     "jensen", "rossi",  "dubois",
    "kowal",    "berg",   "larsen", "moreau",    "silva",  "keller", "walsh",
    "fischer",  "horvat", "brandt", "lindqvist", "petrov", "costa",  "hughes",
    "nakamura", "okafor", "schulz", "varga",     "weber",  "young",  "zeller",
    "baker",    "carter", "dixon",  "ellis",     "foster", "gordon", "harper"};
constexpr const char* kBuiltinWords[] = {
    "account", "address", "agenda",  "annual",    "archive", "board",
    "budget",  "campus",  "chapter", "circle",    "company", "contact",
    "council", "course",  "design",  "digest",    "event",   "federal",
    "finance", "forum",   "garden",  "general",   "group",   "history",
    "housing", "library", "local",   "meeting",   "member",  "minutes",
    "museum",  "network", "notice",  "office",    "online",  "people",
    "project", "public",  "record",  "regional",  "report",  "research",
    "review",  "school",  "science", "service",   "society", "staff",
    "student", "summer",  "support", "system",    "team",    "travel",
    "union",   "update",  "village", "volunteer", "weekly",  "winter"};

// splitmix64: small, fast, and the same everywhere.
struct Rng {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return n ? size_t(Next() % n) : 0; }
};

bool ValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

bool Hostile(std::string_view path) {
  if (path.size() > kMaxPath || !ValidUtf8(path)) return true;
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') {
      return true;
    }
  }
  return path.find("..") != std::string_view::npos ||
         path.find("//") != std::string_view::npos;
}

// The path below the tree root, checked: segments of [a-z0-9-], each at
// most kMaxSegment bytes, at most kMaxDepth of them.
bool TreePath(std::string_view rest) {
  int depth = 0;
  size_t len = 0;
  for (char c : rest) {
    if (c == '/') {
      if (len == 0) return false;
      if (++depth > kMaxDepth) return false;
      len = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
      if (++len > kMaxSegment) return false;
    } else {
      return false;
    }
  }
  return len == 0 || depth < kMaxDepth;
}

std::string Capital(std::string w) {
  if (!w.empty() && w[0] >= 'a' && w[0] <= 'z') w[0] = char(w[0] - 32);
  return w;
}

}  // namespace

std::vector<std::string> LoadWords(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (out.size() < kMaxWords && std::getline(in, line)) {
    if (line.size() < 3 || line.size() > 12) continue;
    bool ok = true;
    for (char c : line) ok = ok && c >= 'a' && c <= 'z';
    if (ok) out.push_back(line);
  }
  if (out.empty()) {
    for (const char* w : kBuiltinWords) out.emplace_back(w);
  }
  return out;
}

std::string PersonName(uint64_t seed, int i) {
  Rng r{seed ^ (0x5851f42d4c957f2dull * uint64_t(i + 1))};
  std::string name = kFirst[r.Below(std::size(kFirst))];
  name += '.';
  name += kLast[r.Below(std::size(kLast))];
  return name;
}

Site::Site(const Options& options, KeyRing keys, std::vector<std::string> words)
    : options_(options), keys_(std::move(keys)), words_(std::move(words)) {
  if (options_.tree.empty() || options_.tree.front() != '/') {
    options_.tree = "/" + options_.tree;
  }
  if (options_.tree.back() != '/') options_.tree += '/';
}

Response Site::Serve(const Visit& visit) const {
  Response r;
  if (Hostile(visit.path)) {
    r.status = 400;
    r.content_type = "text/plain";
    r.body = "bad request\n";
    return r;
  }
  if (visit.path == "/robots.txt") {
    r.content_type = "text/plain";
    r.body = "User-agent: *\nDisallow: " + options_.tree + "\n";
    return r;
  }
  if (visit.path == "/") {
    r.body =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        "<title>Directory</title></head><body>\n<h1>Directory</h1>\n"
        "<p><a href=\"" +
        options_.tree + "\">People and contacts</a></p>\n</body></html>\n";
    return r;
  }
  std::string_view path = visit.path;
  std::string_view root = std::string_view(options_.tree);
  if (path == root.substr(0, root.size() - 1)) path = root;
  if (path.substr(0, root.size()) == root &&
      TreePath(path.substr(root.size()))) {
    return Page(visit, path);
  }
  r.status = 404;
  r.content_type = "text/plain";
  r.body = "not found\n";
  return r;
}

Response Site::Page(const Visit& visit, std::string_view path) const {
  // The canonical page: with a trailing slash, so "/a" and "/a/" are one.
  std::string page(path);
  if (page.back() != '/') page += '/';
  const Key& key = keys_.current();
  auto h = Hmac(key.secret, "spamsink-page-v1 " + page);
  uint64_t seed = 0;
  for (int i = 0; i < 8; ++i) seed = (seed << 8) | h[i];
  Rng rng{seed};
  auto word = [&] { return words_[rng.Below(words_.size())]; };

  Harvest harvest;
  harvest.minute = int64_t(std::floor(visit.wall_seconds / 60));
  harvest.ref = VisitorRef(key, visit.ip, visit.user_agent, harvest.minute);
  harvest.ip = std::string(visit.ip);
  harvest.user_agent = std::string(visit.user_agent);
  harvest.page = page;
  harvest.time = visit.wall_seconds;

  std::string title = Capital(word()) + " " + Capital(word());
  Response r;
  std::string& b = r.body;
  b.reserve(4096);
  b += "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title +
       "</title></head><body>\n<h1>" + title + "</h1>\n";
  for (int p = 0; p < 3; ++p) {
    b += "<p>";
    int n = 25 + int(rng.Below(30));
    for (int w = 0; w < n; ++w) {
      std::string x = word();
      b += w == 0 ? Capital(x) : x;
      b += (w + 1 == n) ? "." : (rng.Below(9) == 0 ? ", " : " ");
    }
    b += "</p>\n";
  }
  b += "<h2>Contacts</h2>\n<ul>\n";
  for (int i = 0; i < options_.addresses_per_page; ++i) {
    std::string name = PersonName(seed, i);
    const std::string& domain =
        options_.domains[rng.Below(options_.domains.size())];
    std::string address =
        MakeAddress(key, name, domain, harvest.ref, harvest.minute);
    std::string shown = Capital(name.substr(0, name.find('.'))) + " " +
                        Capital(name.substr(name.find('.') + 1));
    if (i % 2 == 0) {
      b += "<li><a href=\"mailto:" + address + "\">" + shown + "</a></li>\n";
    } else {
      b += "<li>" + shown + ": " + address + "</li>\n";
    }
    ++harvest.addresses;
  }
  b += "</ul>\n<h2>See also</h2>\n<ul>\n";
  int depth = 0;
  for (char c : page.substr(options_.tree.size())) depth += c == '/';
  for (int i = 0; depth < kMaxDepth && i < options_.links_per_page; ++i) {
    std::string slug = word() + "-" + word();
    b +=
        "<li><a href=\"" + page + slug + "/\">" + Capital(slug) + "</a></li>\n";
  }
  b += "</ul>\n</body></html>\n";
  r.harvest = std::move(harvest);
  return r;
}

}  // namespace traps
