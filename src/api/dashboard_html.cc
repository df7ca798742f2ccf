#include "api/dashboard_html.h"

#include <cctype>
#include <cmath>
#include <cstdio>

namespace api::html {

const char kCsp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'";

std::string Escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string UrlEncode(std::string_view text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string UrlDecode(std::string_view text) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 &&
               hex(text[i + 2]) >= 0) {
      out += char(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

ledger::Params ParseForm(std::string_view body) {
  ledger::Params out;
  while (!body.empty()) {
    size_t amp = body.find('&');
    std::string_view part = body.substr(0, amp);
    body = amp == std::string_view::npos ? "" : body.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    out.emplace(
        UrlDecode(part.substr(0, eq)),
        eq == std::string_view::npos ? "" : UrlDecode(part.substr(eq + 1)));
  }
  return out;
}

std::string QueryString(const ledger::Params& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += UrlEncode(k) + "=" + UrlEncode(v);
  }
  return out;
}

std::string Count(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Bytes(uint64_t n) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB"};
  double v = double(n);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string Seconds(double s) {
  char buf[48];
  if (!(s >= 0)) s = 0;
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%.1f s", s);
  } else if (s < 7200) {
    std::snprintf(buf, sizeof buf, "%.1f min", s / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  }
  return buf;
}

std::string Time(double unix_s) {
  return unix_s > 0 ? ledger::FormatTime(unix_s) : "";
}

std::string Page(std::string_view title, std::string_view current,
                 std::string_view body, std::string_view csrf, bool charts) {
  static const std::pair<const char*, const char*> kNav[] = {
      {"/", "Overview"},
      {"/sources", "Sources"},
      {"/harvesters", "Harvesters"},
      {"/exports", "Exports"},
      {"/server", "Server"}};
  std::string out =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width\">"
      "<title>spamsink &middot; ";
  out += Escape(title);
  out += "</title><link rel=\"stylesheet\" href=\"/assets/style.css\">";
  // Only pages with charts link the library: others skip it.
  charts = charts || current == "/";
  if (charts) out += "<link rel=\"stylesheet\" href=\"/assets/dygraph.css\">";
  out +=
      "<link rel=\"icon\" href=\"/assets/favicon.svg\">"
      "</head><body><header><span class=\"brand\">spamsink</span><nav>";
  for (const auto& [href, name] : kNav) {
    out += "<a href=\"";
    out += href;
    out += "\"";
    if (current == href) out += " aria-current=\"page\"";
    out += ">";
    out += name;
    out += "</a>";
  }
  out += "</nav>";
  if (!csrf.empty()) {
    out +=
        "<form method=\"post\" action=\"/logout\" class=\"logout\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"" +
        Escape(csrf) + "\"><button>Log out</button></form>";
  }
  out += "</header><main>\n";
  out += body;
  out += "\n</main>";
  if (charts) out += "<script src=\"/assets/dygraph.min.js\"></script>";
  out += "<script src=\"/assets/app.js\"></script></body></html>\n";
  return out;
}

void AddSecurityHeaders(Response* r) {
  r->headers.push_back({"Content-Security-Policy", kCsp});
  r->headers.push_back({"X-Content-Type-Options", "nosniff"});
  r->headers.push_back({"X-Frame-Options", "DENY"});
  r->headers.push_back({"Referrer-Policy", "no-referrer"});
}

Response HtmlResponse(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  AddSecurityHeaders(&r);
  r.headers.push_back({"Cache-Control", "no-store"});
  return r;
}

}  // namespace api::html
