#include "api/dashboard_auth.h"

#include <sys/random.h>

#include <algorithm>
#include <stdexcept>

namespace api {

std::string RandomToken() {
  unsigned char raw[16];
  size_t got = 0;
  for (int tries = 0; got < sizeof raw && tries < 100; ++tries) {
    ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
    if (n > 0) got += size_t(n);
  }
  // Without randomness a session id would be guessable: a bug, not a
  // condition to carry on through.
  if (got < sizeof raw) throw std::runtime_error("getrandom failed");
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view part = header.substr(0, semi);
    header = semi == std::string_view::npos ? "" : header.substr(semi + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) {
      return std::string(part.substr(eq + 1));
    }
  }
  return "";
}

bool SameSecret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() != b.size();
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= a[i] ^ (i < b.size() ? b[i] : 0);
  }
  return diff == 0;
}

std::string Sessions::Create(double now) {
  std::string id = RandomToken();
  std::lock_guard lock(mu_);
  for (auto it = expiry_.begin(); it != expiry_.end();) {
    it = it->second <= now ? expiry_.erase(it) : std::next(it);
  }
  if (expiry_.size() >= max_) {
    auto oldest = std::min_element(
        expiry_.begin(), expiry_.end(),
        [](const auto& a, const auto& b) { return a.second < b.second; });
    expiry_.erase(oldest);
  }
  expiry_[id] = now + ttl_;
  return id;
}

bool Sessions::Valid(std::string_view id, double now) const {
  if (id.empty()) return false;
  std::lock_guard lock(mu_);
  auto it = expiry_.find(id);
  return it != expiry_.end() && it->second > now;
}

void Sessions::Remove(std::string_view id) {
  std::lock_guard lock(mu_);
  auto it = expiry_.find(id);
  if (it != expiry_.end()) expiry_.erase(it);
}

}  // namespace api
