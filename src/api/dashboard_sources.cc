// The Sources table and the page of one source.
#include <algorithm>
#include <cstdio>

#include "api/dashboard.h"
#include "api/dashboard_html.h"
#include "ledger/export.h"

namespace api {
namespace {

using html::Escape;

constexpr uint64_t kPageSize = 25;

struct Column {
  const char* sort;  // ledger sort key, or null: not sortable
  const char* label;
};
constexpr Column kColumns[] = {
    {"ip", "Address"},        {"last_seen", "Last seen"},
    {nullptr, "First seen"},  {"connections", "Connections"},
    {"messages", "Messages"}, {"bytes", "Bytes"},
    {"seconds_held", "Held"}, {"delay_seconds", "Tarpit delay"},
    {nullptr, "Evidence"},    {nullptr, "HELO"},
};

std::string EvidenceList(const ledger::SourceRecord& rec) {
  uint32_t mask = rec.EvidenceMask();
  std::string out;
  const auto& names = ledger::EvidenceNames();
  for (size_t i = 0; i < names.size(); ++i) {
    if ((mask & (1u << i)) == 0) continue;
    if (!out.empty()) out += ", ";
    out += Escape(names[i]);
  }
  return out;
}

// The form's parameters as the ledger's query reads them: empty fields
// dropped, checked evidence boxes joined, paging by page number.
ledger::Params QueryParams(const ledger::Params& in, uint64_t* page) {
  ledger::Params out;
  std::string evidence;
  *page = 1;
  for (const auto& [k, v] : in) {
    if (v.empty()) continue;
    if (k == "evidence") {
      evidence += (evidence.empty() ? "" : ",") + v;
    } else if (k == "page") {
      *page = std::max<uint64_t>(1, std::strtoull(v.c_str(), nullptr, 10));
    } else {
      out.emplace(k, v);
    }
  }
  if (!evidence.empty()) out.emplace("evidence", evidence);
  return out;
}

// The link that keeps the current filters and changes one parameter.
std::string Link(ledger::Params p, const std::string& key,
                 const std::string& value) {
  p.erase(key);
  if (!value.empty()) p.emplace(key, value);
  return "/sources?" + html::QueryString(p);
}

std::string Names(const char* title, const std::vector<peer::NameCount>& list,
                  const char* id) {
  std::string b = "<section><h2>" + std::string(title) + "</h2><table id=\"" +
                  id +
                  "\"><thead><tr><th>name</th><th>times</th></tr></thead>"
                  "<tbody>";
  for (const auto& n : list) {
    b += "<tr><td class=\"name\">" + Escape(n.name) + "</td><td>" +
         html::Count(n.count) + "</td></tr>";
  }
  if (list.empty()) b += "<tr><td colspan=\"2\">none</td></tr>";
  return b + "</tbody></table></section>";
}

// The source's sessions and messages per hour (ledger/hourly.h): a chart
// app.js draws from the data-series attribute (JSON, escaped like any
// attribute: no inline script under the CSP), every hour from the first
// kept one to now, and a table of the hours with sessions for browsers
// without JavaScript, newest first.
std::string HoursSection(const std::vector<ledger::HourCounts>& hours,
                         double now) {
  std::string series = "[";
  if (!hours.empty()) {
    int64_t last = std::max(ledger::HourOf(now), hours.back().hour);
    size_t k = 0;
    for (int64_t h = hours.front().hour; h <= last; h += 3600) {
      uint64_t s = 0, m = 0;
      if (k < hours.size() && hours[k].hour == h) {
        s = hours[k].sessions;
        m = hours[k].messages;
        ++k;
      }
      if (series.size() > 1) series += ',';
      series += "[" + std::to_string(h) + "," + std::to_string(s) + "," +
                std::to_string(m) + "]";
    }
  }
  series += "]";
  std::string b =
      "<section><h2>Sessions per hour</h2><p class=\"key\"><span "
      "class=\"k-conn\">sessions</span> and <span "
      "class=\"k-msg\">messages</span>, hour by hour, as long as "
      "ledger.hourly_retention_days keeps them</p>";
  if (hours.empty()) {
    return b +
           "<p id=\"source-hours-none\">No hourly counts kept for this "
           "address.</p></section>\n";
  }
  b += "<div id=\"chart-source-hours\" class=\"chart\" role=\"img\" "
       "aria-label=\"sessions and messages per hour\" data-series=\"" +
       Escape(series) +
       "\"></div><details class=\"nojs-series\"><summary>As a table"
       "</summary><table id=\"source-hours\"><thead><tr><th>hour starting"
       "</th><th>sessions</th><th>messages</th></tr></thead><tbody>";
  for (size_t i = hours.size(); i-- > 0;) {
    b += "<tr><td>" + Escape(ledger::FormatTime(double(hours[i].hour))) +
         "</td><td>" + html::Count(hours[i].sessions) + "</td><td>" +
         html::Count(hours[i].messages) + "</td></tr>";
  }
  return b + "</tbody></table></details></section>\n";
}

}  // namespace

Response Dashboard::Sources(const Request& r, const std::string& csrf) const {
  uint64_t page = 1;
  ledger::Params params = QueryParams(r.params, &page);
  ledger::Params for_query = params;
  for_query.emplace("limit", std::to_string(kPageSize));
  for_query.emplace("offset", std::to_string((page - 1) * kPageSize));
  auto q = ledger::ParseQuery(for_query, {}, kPageSize, kPageSize);
  std::string b = "<h1>Sources</h1>\n";
  auto value = [&](const char* key) {
    auto it = params.find(key);
    return it == params.end() ? std::string() : Escape(it->second);
  };
  b += "<form method=\"get\" action=\"/sources\" class=\"filters\" "
       "id=\"filters\">"
       "<label>CIDR <input name=\"cidr\" placeholder=\"192.0.2.0/24\" "
       "value=\"" +
       value("cidr") +
       "\"></label>"
       "<label>Minimum messages <input name=\"min_messages\" "
       "type=\"number\" min=\"0\" value=\"" +
       value("min_messages") +
       "\"></label>"
       "<label>Seen since <input name=\"since\" placeholder=\"RFC 3339 or "
       "Unix seconds\" value=\"" +
       value("since") +
       "\"></label>"
       "<label>Seen until <input name=\"until\" value=\"" +
       value("until") +
       "\"></label>"
       "<label>Sink <input name=\"sink\" placeholder=\"sink id (fleet)\" "
       "value=\"" +
       value("sink") + "\"></label><fieldset><legend>Evidence</legend>";
  std::string chosen =
      params.count("evidence") ? params.find("evidence")->second : "";
  for (auto name : ledger::EvidenceNames()) {
    std::string n(name);
    bool on = ("," + chosen + ",").find("," + n + ",") != std::string::npos;
    b += "<label><input type=\"checkbox\" name=\"evidence\" value=\"" +
         Escape(n) + "\"" + (on ? " checked" : "") + "> " + Escape(n) +
         "</label>";
  }
  b += "</fieldset>";
  if (auto it = params.find("sort"); it != params.end()) {
    b += "<input type=\"hidden\" name=\"sort\" value=\"" + Escape(it->second) +
         "\">";
  }
  if (auto it = params.find("order"); it != params.end()) {
    b += "<input type=\"hidden\" name=\"order\" value=\"" + Escape(it->second) +
         "\">";
  }
  b += "<button>Filter</button> <a href=\"/sources\">clear</a></form>\n";
  if (!q.ok()) {
    b += "<p class=\"error\" role=\"alert\">" + Escape(q.error()) + "</p>";
    return html::HtmlResponse(400, html::Page("Sources", "/sources", b, csrf));
  }
  auto result = ledger_->Sources(*q);
  if (!result.ok()) {
    b += "<p class=\"error\">store: " + Escape(result.error()) + "</p>";
    return html::HtmlResponse(503, html::Page("Sources", "/sources", b, csrf));
  }
  uint64_t pages = (result->total + kPageSize - 1) / kPageSize;
  b += "<p id=\"summary\"><span data-key=\"total\">" +
       html::Count(result->total) + "</span> sources match; page " +
       std::to_string(page) + " of " +
       std::to_string(std::max<uint64_t>(pages, 1)) +
       ". Rows in <mark class=\"new\">this colour</mark> were first seen "
       "in the last hour.</p>\n";
  b += "<table id=\"sources\"><thead><tr>";
  const char* sort = ledger::SortKeyName(q->sort);
  for (const auto& c : kColumns) {
    if (c.sort == nullptr) {
      b += "<th>" + std::string(c.label) + "</th>";
      continue;
    }
    bool current = std::string_view(sort) == c.sort;
    // A click sorts by the column, descending first (ascending for the
    // address); a second click reverses.
    std::string order =
        current ? (q->ascending ? "desc" : "asc")
                : (std::string_view(c.sort) == "ip" ? "asc" : "desc");
    ledger::Params p = params;
    p.erase("order");
    p.emplace("order", order);
    std::string href = Link(p, "sort", c.sort);
    b += "<th" +
         std::string(current ? (q->ascending ? " aria-sort=\"ascending\""
                                             : " aria-sort=\"descending\"")
                             : "") +
         "><a href=\"" + Escape(href) + "\">" + c.label + "</a></th>";
  }
  b += "</tr></thead><tbody>";
  double hour_ago = clock_->WallSeconds() - 3600;
  for (const auto& rec : result->records) {
    std::string ip = rec.ip.ToString();
    b += std::string("<tr") +
         (rec.first_seen >= hour_ago ? " class=\"new\"" : "") +
         "><td><a href=\"/source/" + Escape(html::UrlEncode(ip)) + "\">" +
         Escape(ip) + "</a></td><td>" + Escape(html::Time(rec.last_seen)) +
         "</td><td>" + Escape(html::Time(rec.first_seen)) + "</td><td>" +
         html::Count(rec.connections) + "</td><td>" +
         html::Count(rec.messages) + "</td><td>" + html::Bytes(rec.bytes) +
         "</td><td>" + html::Seconds(rec.seconds_held) + "</td><td>" +
         html::Seconds(rec.delay_seconds) + "</td><td>" + EvidenceList(rec) +
         "</td><td class=\"name\">" +
         (rec.helo_names.empty() ? "" : Escape(rec.helo_names[0].name)) +
         "</td></tr>";
  }
  b += "</tbody></table>\n<nav class=\"pages\" aria-label=\"pages\">";
  if (page > 1) {
    b += "<a rel=\"prev\" href=\"" +
         Escape(Link(params, "page", std::to_string(page - 1))) +
         "\">&larr; previous</a> ";
  }
  if (page < pages) {
    b += "<a rel=\"next\" href=\"" +
         Escape(Link(params, "page", std::to_string(page + 1))) +
         "\">next &rarr;</a>";
  }
  b += "</nav>\n";
  return html::HtmlResponse(200, html::Page("Sources", "/sources", b, csrf));
}

Response Dashboard::Source(std::string_view text,
                           const std::string& csrf) const {
  std::string decoded = html::UrlDecode(text);
  auto ip = base::IpAddress::Parse(decoded);
  if (!ip.ok()) {
    return html::HtmlResponse(
        400, html::Page("Bad address", "",
                        "<h1>Bad address</h1><p>" + Escape(ip.error()) + "</p>",
                        csrf));
  }
  auto found = ledger_->Source(*ip);
  if (!found.ok()) {
    return html::HtmlResponse(
        503, html::Page("Store failing", "",
                        "<p>store: " + Escape(found.error()) + "</p>", csrf));
  }
  std::string shown = ip->ToString();
  if (!found->has_value()) {
    return html::HtmlResponse(
        404, html::Page(shown, "",
                        "<h1>" + Escape(shown) +
                            "</h1><p>No record for this address.</p>",
                        csrf));
  }
  const ledger::SourceRecord& rec = **found;
  auto row = [](const char* k, const std::string& v) {
    return "<tr><th scope=\"row\">" + std::string(k) + "</th><td>" + v +
           "</td></tr>";
  };
  std::string b = "<h1>Source <span id=\"source-ip\">" + Escape(shown) +
                  "</span></h1>\n<div class=\"cards\"><section><h2>Counters"
                  "</h2><table class=\"kv\">";
  b += row("First seen", Escape(html::Time(rec.first_seen)));
  b += row("Last seen", Escape(html::Time(rec.last_seen)));
  b += row("Connections", html::Count(rec.connections));
  b += row("Sessions with mail", html::Count(rec.sessions_with_mail));
  b += row("Messages", html::Count(rec.messages));
  b += row("Recipients", html::Count(rec.recipients));
  b += row("Bytes", html::Bytes(rec.bytes));
  b += row("Commands", html::Count(rec.commands));
  b += row("TLS sessions", html::Count(rec.tls_sessions));
  b += row("AUTH attempts", html::Count(rec.auth_attempts));
  b += row("Held", html::Seconds(rec.seconds_held));
  b += "</table></section><section><h2>Tarpit</h2><table class=\"kv\">";
  b += row("Sessions held", html::Count(rec.tarpitted_sessions));
  b += row("Delay imposed", html::Seconds(rec.delay_seconds));
  b += row("Replies stuttered", html::Count(rec.replies_stuttered));
  b += row("Slow reads", html::Count(rec.slow_reads));
  b += "</table><h2>Evidence</h2><p id=\"evidence\">" +
       (rec.EvidenceMask() ? EvidenceList(rec) : std::string("none")) +
       "</p><h2>Close reasons</h2><table class=\"kv\">";
  for (size_t i = 0; i < rec.close_reasons.size(); ++i) {
    if (rec.close_reasons[i] == 0) continue;
    b += row(ledger::CloseReasonKey(int(i)), html::Count(rec.close_reasons[i]));
  }
  b += "</table></section></div>\n";
  b += Timeline(rec);
  auto hours = ledger_->SourceHours(*ip, 0);
  b += hours.ok() ? HoursSection(*hours, clock_->WallSeconds())
                  : "<p>hourly counts: " + Escape(hours.error()) + "</p>";
  b += "<div class=\"cards\">";
  b += Names("HELO names", rec.helo_names, "helo-names");
  b += Names("MAIL FROM domains", rec.mail_from_domains, "mail-from-domains");
  b += Names("RCPT domains", rec.rcpt_domains, "rcpt-domains");
  b += "</div>\n<section><h2>Export lines</h2><table id=\"export-lines\">"
       "<tbody>";
  static const char* kFormats[] = {"plain", "postfix", "spamd", "csv", "jsonl"};
  ledger::ExportOptions eo;
  eo.now = clock_->WallSeconds();
  for (const char* f : kFormats) {
    if (!ledger::ParseFormat(f, &eo.format)) continue;
    std::string text = ledger::Export({rec}, eo);
    b += "<tr><th scope=\"row\">" + std::string(f) +
         "</th><td><pre class=\"copy\">" + Escape(text) + "</pre></td></tr>";
  }
  b += "</tbody></table></section>\n";
  return html::HtmlResponse(200, html::Page(shown, "", b, csrf, true));
}

}  // namespace api
