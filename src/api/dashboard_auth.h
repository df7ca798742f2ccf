// Browser logins for the console: a login form (POST, CSRF token) trades
// api.token for a random session id kept in an HttpOnly, SameSite=Strict
// cookie. Bearer tokens keep working for scripts. Sessions live in memory
// only: a restart logs everyone out.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace api {

inline constexpr char kSessionCookie[] = "spamsink_session";
inline constexpr char kCsrfCookie[] = "spamsink_csrf";

// 128 random bits as 32 hex digits (getrandom(2)).
std::string RandomToken();
// The value of cookie name in a Cookie header, or "".
std::string CookieValue(std::string_view header, std::string_view name);
// Compares without an early exit, so timing does not reveal a secret.
bool SameSecret(std::string_view a, std::string_view b);

// The logged-in sessions. Thread-safe; bounded (the oldest goes first).
class Sessions {
 public:
  explicit Sessions(size_t max_sessions = 64, double ttl_seconds = 12 * 3600)
      : max_(max_sessions), ttl_(ttl_seconds) {}
  // A new session id valid until now + ttl.
  std::string Create(double now);
  bool Valid(std::string_view id, double now) const;
  void Remove(std::string_view id);

 private:
  const size_t max_;
  const double ttl_;
  mutable std::mutex mu_;
  std::map<std::string, double, std::less<>> expiry_;  // id -> Unix seconds
};

}  // namespace api
