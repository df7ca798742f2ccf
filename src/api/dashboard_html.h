// Building blocks of the console's server-rendered pages: escaping, URL
// encoding, number formatting and the page frame with its security headers.
// Every text that reaches a page goes through Escape (or is a number).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "api/handlers.h"
#include "ledger/query.h"

namespace api::html {

// Text safe inside an element or a quoted attribute: & < > " ' escaped.
std::string Escape(std::string_view text);
// Percent-encodes all but unreserved characters (RFC 3986).
std::string UrlEncode(std::string_view text);
// Decodes %XX and '+' (a space, as forms send it); a bad escape is kept.
std::string UrlDecode(std::string_view text);
// An application/x-www-form-urlencoded body (or query) as parameters.
ledger::Params ParseForm(std::string_view body);
// "a=1&b=2" from parameters, each part encoded.
std::string QueryString(const ledger::Params& params);

std::string Count(uint64_t n);    // 1234567 -> "1,234,567"
std::string Bytes(uint64_t n);    // "12.3 MB"
std::string Seconds(double s);    // "1.5 s", "2 h 03 min"
std::string Time(double unix_s);  // RFC 3339 UTC, "" for 0

// Content-Security-Policy of every console response: only this origin's
// scripts, styles, images and fetches; no inline code; no framing.
extern const char kCsp[];

// A whole page: title, navigation (current marked), body HTML (already
// escaped by the caller), and a logout form carrying csrf when not empty.
// The chart library is linked only on the Overview ("/") and where charts
// says so (a source's page).
std::string Page(std::string_view title, std::string_view current,
                 std::string_view body, std::string_view csrf,
                 bool charts = false);
// An HTML response with the security headers (CSP, nosniff, no framing,
// no referrer, no caching of ledger data).
Response HtmlResponse(int status, std::string body);
// Adds the security headers to any console response.
void AddSecurityHeaders(Response* r);

}  // namespace api::html
