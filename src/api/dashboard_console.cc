// The console's door: assets (public), the login form that trades the API
// token for a session cookie, logout, and the pages behind them.
#include "api/dashboard.h"
#include "api/dashboard_auth.h"
#include "api/dashboard_html.h"
#include "api/handlers.h"

namespace api {
namespace {

constexpr int kSessionSeconds = 12 * 3600;

std::string Cookie(const char* name, const std::string& value, int max_age) {
  // HttpOnly: scripts (an injected one included) never read it;
  // SameSite=Strict: no other site's page or form sends it.
  return std::string(name) + "=" + value +
         "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
         std::to_string(max_age);
}

Response Redirect(const char* where) {
  Response r = html::HtmlResponse(303, "");
  r.headers.push_back({"Location", where});
  return r;
}

Response NotAllowed(const char* allow) {
  Response r =
      ErrorResponse(405, std::string("method not allowed: use ") + allow);
  r.headers.push_back({"Allow", allow});
  return r;
}

std::string FormValue(const ledger::Params& form, const char* key) {
  auto it = form.find(key);
  return it == form.end() ? "" : it->second;
}

}  // namespace

Response Api::LoginForm(int status, const std::string& message) const {
  // Login CSRF defence (double submit): the form's hidden field must match
  // a cookie that only this origin could have set.
  std::string csrf = RandomToken();
  std::string b =
      "<h1>Log in</h1><form method=\"post\" action=\"/login\" "
      "class=\"login\" id=\"login\">";
  if (!message.empty()) {
    b += "<p class=\"error\" role=\"alert\">" + html::Escape(message) + "</p>";
  }
  b += "<input type=\"hidden\" name=\"csrf\" value=\"" + csrf +
       "\"><label>API token (api.token) <input type=\"password\" "
       "name=\"token\" autocomplete=\"current-password\" required "
       "autofocus></label><button>Log in</button></form>\n";
  Response r = html::HtmlResponse(status, html::Page("Log in", "", b, ""));
  r.headers.push_back({"Set-Cookie", Cookie(kCsrfCookie, csrf, 3600)});
  return r;
}

Response Api::Console(const Request& r) const {
  const bool read = r.method == "GET" || r.method == "HEAD";
  if (r.path.rfind("/assets/", 0) == 0) {
    return read ? Dashboard::Asset(r.path) : NotAllowed("GET");
  }
  const double now = clock_->WallSeconds();
  const std::string csrf_cookie = CookieValue(r.cookie, kCsrfCookie);
  if (r.path == "/login") {
    if (Token().empty()) return Redirect("/");
    if (read) return LoginForm(200, "");
    if (r.method != "POST") return NotAllowed("GET, POST");
    ledger::Params form = html::ParseForm(r.body);
    std::string csrf = FormValue(form, "csrf");
    if (csrf.empty() || csrf_cookie.empty() || !SameSecret(csrf, csrf_cookie)) {
      return LoginForm(403,
                       "The form expired or came from elsewhere; "
                       "please log in again.");
    }
    if (!SameSecret(FormValue(form, "token"), Token())) {
      return LoginForm(401, "Wrong token.");
    }
    Response resp = Redirect("/");
    resp.headers.push_back(
        {"Set-Cookie",
         Cookie(kSessionCookie, sessions_.Create(now), kSessionSeconds)});
    return resp;
  }
  if (r.path == "/logout") {
    if (r.method != "POST") return NotAllowed("POST");
    if (Token().empty()) return Redirect("/");
    ledger::Params form = html::ParseForm(r.body);
    std::string csrf = FormValue(form, "csrf");
    if (csrf.empty() || !SameSecret(csrf, csrf_cookie)) {
      return html::HtmlResponse(403, html::Page("Refused", "",
                                                "<p>Logout refused: bad CSRF "
                                                "token.</p>",
                                                ""));
    }
    sessions_.Remove(CookieValue(r.cookie, kSessionCookie));
    Response resp = Redirect("/login");
    resp.headers.push_back({"Set-Cookie", Cookie(kSessionCookie, "", 0)});
    return resp;
  }
  if (!Authorized(r)) {
    return LoginForm(401, r.authorization.empty() ? "" : "Wrong token.");
  }
  if (!read) return NotAllowed("GET");
  // The logout form needs the CSRF cookie's value; with no token there is
  // nobody to log out.
  return dashboard_->Handle(r, Token().empty() ? "" : csrf_cookie);
}

}  // namespace api
