// The Harvesters page and the source page's timeline (what the ledger and
// the trap attribution know of one address over time).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "api/dashboard.h"
#include "api/dashboard_html.h"

namespace api {
namespace {

using html::Escape;

// A link to the source page of ip (text, escaped); "" stays "".
std::string SourceLink(const std::string& ip) {
  if (ip.empty()) return "";
  return "<a href=\"/source/" + html::UrlEncode(ip) + "\">" + Escape(ip) +
         "</a>";
}

std::string Delay(double seconds) {
  return seconds >= 0 ? html::Seconds(seconds) : "-" + html::Seconds(-seconds);
}

}  // namespace

Response Dashboard::Harvesters(const std::string& csrf) const {
  std::string b = "<h1>Harvesters</h1>\n";
  if (traps_ == nullptr) {
    b += "<p id=\"traps-off\">Trap attribution is off: it needs "
         "<code>[traps]</code> and the SQLite ledger (docs/TRAPS.md).</p>";
    return html::HtmlResponse(200,
                              html::Page("Harvesters", "/harvesters", b, csrf));
  }
  auto harvesters = traps_->Harvesters(options_->max_page);
  auto domains = traps_->Domains();
  if (!harvesters.ok() || !domains.ok()) {
    b += "<p>trap ledger: " +
         Escape(!harvesters.ok() ? harvesters.error() : domains.error()) +
         "</p>";
    return html::HtmlResponse(503,
                              html::Page("Harvesters", "/harvesters", b, csrf));
  }
  b += "<p>Who took trap addresses (from the trap site, or a label of "
       "<code>spamsink traps --generate</code>), and which senders mailed "
       "them afterwards. The same as <code>/api/v1/harvesters</code>; the "
       "harvester addresses are an export list "
       "(<a href=\"/exports#harvesters\">Exports</a>).</p>\n"
       "<table id=\"harvesters\"><thead><tr><th>Harvester</th>"
       "<th>Label</th><th>First harvest</th><th>Last harvest</th>"
       "<th>Pages</th><th>Addresses</th><th>User agents</th>"
       "<th>Spam sent later (sender, first spam, delay, hits)</th></tr>"
       "</thead><tbody>";
  for (const auto& h : *harvesters) {
    b += "<tr><td class=\"ip\">" + SourceLink(h.ip) + "</td><td>" +
         Escape(h.label) + "</td><td>" + Escape(html::Time(h.first_harvest)) +
         "</td><td>" + Escape(html::Time(h.last_harvest)) + "</td><td>" +
         html::Count(h.pages) + "</td><td>" + html::Count(h.addresses) +
         "</td><td>";
    for (size_t i = 0; i < h.user_agents.size(); ++i) {
      b += (i ? "<br>" : "") + Escape(h.user_agents[i]);
    }
    b += "</td><td>";
    if (h.senders.empty()) b += "none yet";
    b += "<ul class=\"senders\">";
    for (const auto& s : h.senders) {
      b += "<li>" + SourceLink(s.ip) + ", " + Escape(html::Time(s.first_spam)) +
           ", after " + Escape(Delay(s.delay_seconds)) + ", " +
           html::Count(s.hits) + "</li>";
    }
    b += "</ul></td></tr>";
  }
  b += "</tbody></table>\n";
  if (harvesters->empty()) b += "<p>No harvest recorded yet.</p>\n";
  b += "<h2>Recipients per trap domain</h2><table id=\"trap-domains\">"
       "<thead><tr><th>Domain</th><th>Recipients</th><th>With a valid "
       "token</th><th>Without</th></tr></thead><tbody>";
  for (const auto& d : *domains) {
    b += "<tr><td>" + Escape(d.domain) + "</td><td>" +
         html::Count(d.recipients) + "</td><td>" + html::Count(d.linked) +
         "</td><td>" + html::Count(d.plain) + "</td></tr>";
  }
  b += "</tbody></table>\n";
  return html::HtmlResponse(200,
                            html::Page("Harvesters", "/harvesters", b, csrf));
}

std::string Dashboard::Timeline(const ledger::SourceRecord& rec) const {
  struct Event {
    double time;
    std::string what;  // HTML, escaped
  };
  std::vector<Event> events;
  events.push_back({rec.first_seen, "first session"});
  std::string trap_note;
  if (traps_ != nullptr) {
    auto links = traps_->LinksOf(rec.ip.ToString());
    if (!links.ok()) {
      trap_note = "<p>trap ledger: " + Escape(links.error()) + "</p>";
    } else {
      for (const auto& l : *links) {
        std::string who = !l.harvester_ip.empty() ? SourceLink(l.harvester_ip)
                          : !l.label.empty()
                              ? "label " + Escape(l.label)
                              : "a harvester no longer on record";
        std::string how =
            l.harvest_known
                ? " (page " + Escape(l.page) + ", " + Escape(l.user_agent) + ")"
                : " (time from the address's token: the harvest record is "
                  "gone)";
        events.push_back({l.harvest_time,
                          "trap addresses it later mailed "
                          "were harvested by " +
                              who + how});
        events.push_back({l.first_spam,
                          "first mail to the addresses "
                          "harvested by " +
                              who + ", " + Escape(Delay(l.delay_seconds)) +
                              " after the harvest"});
        if (l.last_spam > l.first_spam) {
          events.push_back({l.last_spam, "last mail to them (" +
                                             html::Count(l.hits) +
                                             " recipients in all)"});
        }
      }
    }
  }
  events.push_back({rec.last_seen, "last session"});
  std::stable_sort(
      events.begin(), events.end(),
      [](const Event& a, const Event& b) { return a.time < b.time; });
  double span = std::max(0.0, rec.last_seen - rec.first_seen);
  double days = std::max(1.0, std::ceil(span / 86400));
  char per_day[32], per_session[32];
  std::snprintf(per_day, sizeof per_day, "%.1f",
                double(rec.connections) / days);
  std::snprintf(
      per_session, sizeof per_session, "%.1f",
      rec.connections ? double(rec.messages) / double(rec.connections) : 0.0);
  std::string b =
      "<section><h2>Timeline</h2><p id=\"timeline-summary\">Active for " +
      Escape(html::Seconds(span)) + " over " + html::Count(uint64_t(days)) +
      (days == 1 ? " day" : " days") + ": " + html::Count(rec.connections) +
      (rec.connections == 1 ? " session, " : " sessions, ") + per_day +
      " a day, " + per_session +
      " messages a session. The ledger keeps each source's totals, not its "
      "sessions one by one: what it knows over time is below.</p>"
      "<table id=\"timeline\"><thead><tr><th>time</th><th>event</th></tr>"
      "</thead><tbody>";
  for (const auto& e : events) {
    b += "<tr><td>" + Escape(html::Time(e.time)) + "</td><td>" + e.what +
         "</td></tr>";
  }
  b += "</tbody></table>" + trap_note + "</section>\n";
  return b;
}

}  // namespace api
