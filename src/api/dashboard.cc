#include "api/dashboard.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "api/dashboard_assets.h"
#include "api/dashboard_html.h"
#include "base/metrics.h"
#include "base/tarpit_cost.h"
#include "ledger/export.h"

namespace api {
namespace {

using json = nlohmann::ordered_json;
using html::Escape;

// The per-minute chart: the last hour.
constexpr int kChartBucket = 60;
constexpr int kChartBuckets = 60;

Response JsonResponse(const json& body) {
  Response r;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  html::AddSecurityHeaders(&r);
  r.headers.push_back({"Cache-Control", "no-store"});
  return r;
}

std::string Row(std::string_view key, std::string_view label,
                const std::string& value) {
  return "<tr><th scope=\"row\">" + std::string(label) +
         "</th><td data-key=\"" + std::string(key) + "\">" + value +
         "</td></tr>";
}

// [hour start, sessions, messages, new sources] for each hour of the day.
json HourlyJson(ledger::Ledger* ledger) {
  double first = 0;
  auto hours = ledger->HourlySeries(&first);
  json out = json::array();
  for (size_t i = 0; i < hours.size(); ++i) {
    out.push_back({first + 3600.0 * double(i), hours[i].connections,
                   hours[i].messages, hours[i].new_sources});
  }
  return out;
}

// The hourly chart's element and its table for browsers without
// JavaScript (newest hour first, empty hours left out).
std::string HourlySection(ledger::Ledger* ledger) {
  std::string b =
      "<section><h2>Per hour, last day</h2><p class=\"key\"><span "
      "class=\"k-conn\">sessions</span>, <span "
      "class=\"k-msg\">messages</span> and <span "
      "class=\"k-new\">new sources</span></p>"
      "<div id=\"chart-hour\" class=\"chart\" role=\"img\" "
      "aria-label=\"sessions, messages and new sources per hour\"></div>"
      "<details class=\"nojs-series\"><summary>As a table</summary>"
      "<table id=\"hourly\"><thead><tr><th>hour starting</th>"
      "<th>sessions</th><th>messages</th><th>new sources</th></tr></thead>"
      "<tbody>";
  double first = 0;
  auto hours = ledger->HourlySeries(&first);
  for (size_t i = hours.size(); i-- > 0;) {
    const auto& w = hours[i];
    if (w.connections == 0 && w.messages == 0 && w.new_sources == 0) continue;
    b += "<tr><td>" + Escape(ledger::FormatTime(first + 3600.0 * double(i))) +
         "</td><td>" + html::Count(w.connections) + "</td><td>" +
         html::Count(w.messages) + "</td><td>" + html::Count(w.new_sources) +
         "</td></tr>";
  }
  b += "</tbody></table></details></section>\n";
  return b;
}

}  // namespace

double ProcessCpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

uint64_t ProcessRssBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? uint64_t(resident) * uint64_t(sysconf(_SC_PAGESIZE)) : 0;
}

bool Dashboard::Owns(std::string_view path) {
  return path == "/" || path == "/overview.json" || path == "/sources" ||
         path.rfind("/source/", 0) == 0 || path == "/exports" ||
         path == "/server" || path == "/harvesters" ||
         path.rfind("/assets/", 0) == 0 || path == "/login" ||
         path == "/logout";
}

Response Dashboard::Asset(std::string_view path) {
  std::string_view name = path.substr(std::string_view("/assets/").size());
  const EmbeddedAsset* a = FindAsset(name);
  if (a == nullptr) {
    return html::HtmlResponse(404,
                              "<!doctype html><title>404</title>"
                              "<p>No such asset.</p>\n");
  }
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() &&
           name.substr(name.size() - ext.size()) == ext;
  };
  Response r;
  r.content_type = ends(".js")    ? "text/javascript; charset=utf-8"
                   : ends(".css") ? "text/css; charset=utf-8"
                   : ends(".svg") ? "image/svg+xml"
                                  : "text/plain; charset=utf-8";
  r.body = std::string(a->data);
  html::AddSecurityHeaders(&r);
  // Assets change only with the binary: an hour of caching, then a check.
  r.headers.push_back({"Cache-Control", "max-age=3600"});
  return r;
}

Response Dashboard::Handle(const Request& r, const std::string& csrf) const {
  if (r.path.rfind("/assets/", 0) == 0) return Asset(r.path);
  if (r.path == "/server") return Server(csrf);
  if (r.path == "/harvesters") return Harvesters(csrf);
  if (ledger_ == nullptr) {
    return html::HtmlResponse(
        503, html::Page("Ledger disabled", r.path,
                        "<h1>Ledger disabled</h1><p>The ledger is off "
                        "(ledger.enabled = false): nothing to show but the "
                        "<a href=\"/server\">server</a>.</p>",
                        csrf));
  }
  if (r.path == "/") return Overview(csrf);
  if (r.path == "/overview.json") return OverviewJson();
  if (r.path == "/sources") return Sources(r, csrf);
  if (r.path.rfind("/source/", 0) == 0) {
    return Source(std::string_view(r.path).substr(8), csrf);
  }
  if (r.path == "/exports") return Exports(r, csrf);
  return html::HtmlResponse(
      404, html::Page("Not found", "", "<h1>Not found</h1>", csrf));
}

Response Dashboard::OverviewJson() const {
  auto s = ledger_->GetStats();
  if (!s.ok()) return ErrorResponse(503, "store: " + s.error());
  const auto& t = s->totals;
  double cpu =
      options_->cpu_seconds ? options_->cpu_seconds() : ProcessCpuSeconds();
  auto counter = [](base::Counter c) { return base::CounterTotal(c); };
  json series = json::array();
  double now = clock_->WallSeconds();
  double end = std::floor(now);
  auto windows = ledger_->RateSeries(kChartBucket, kChartBuckets);
  for (size_t i = 0; i < windows.size(); ++i) {
    double t_end = end - double(kChartBucket) * double(windows.size() - 1 - i);
    series.push_back(
        {t_end, windows[i].connections, windows[i].messages, windows[i].bytes});
  }
  return JsonResponse(
      {{"time", ledger::FormatTime(now)},
       {"sources", t.sources},
       {"connections", t.connections},
       {"messages", t.messages},
       {"recipients", t.recipients},
       {"bytes", t.bytes},
       {"seconds_held", t.seconds_held},
       {"open_connections", base::g_open_connections.load()},
       {"held_connections", base::g_held_connections.load()},
       {"pending_sources", s->pending_sources},
       {"last_minute_connections", s->last_minute.connections},
       {"last_minute_messages", s->last_minute.messages},
       {"last_hour_connections", s->last_hour.connections},
       {"last_hour_messages", s->last_hour.messages},
       {"cpu_seconds", cpu},
       {"rss_bytes", ProcessRssBytes()},
       {"connection_seconds_per_cpu_second",
        cpu > 0 ? t.seconds_held / cpu : 0},
       {"tarpit_sessions", counter(base::Counter::kTarpitSessions)},
       {"tarpit_delay_seconds",
        double(counter(base::Counter::kTarpitDelayUs)) / 1e6},
       {"tarpit_stuttered", counter(base::Counter::kTarpitStuttered)},
       {"tarpit_slow_reads", counter(base::Counter::kTarpitSlowReads)},
       {"tarpit_retransmissions", base::g_tarpit_retransmissions.load()},
       {"per_minute", std::move(series)},
       {"per_hour", HourlyJson(ledger_)}});
}

Response Dashboard::Overview(const std::string& csrf) const {
  auto s = ledger_->GetStats();
  if (!s.ok()) {
    return html::HtmlResponse(503, html::Page("Overview", "/",
                                              "<h1>Store failing</h1><p>" +
                                                  Escape(s.error()) + "</p>",
                                              csrf));
  }
  const auto& t = s->totals;
  double cpu =
      options_->cpu_seconds ? options_->cpu_seconds() : ProcessCpuSeconds();
  auto counter = [](base::Counter c) { return base::CounterTotal(c); };
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.1f",
                cpu > 0 ? t.seconds_held / cpu : 0.0);
  std::string b =
      "<h1>Overview</h1>\n<p class=\"updated\">As of <span "
      "data-key=\"time\">" +
      Escape(ledger::FormatTime(clock_->WallSeconds())) +
      "</span></p>\n<div class=\"cards\">";
  b += "<section><h2>Totals</h2><table class=\"kv\" id=\"totals\">";
  b += Row("sources", "Sources", html::Count(t.sources));
  b += Row("connections", "Connections", html::Count(t.connections));
  b += Row("messages", "Messages", html::Count(t.messages));
  b += Row("recipients", "Recipients", html::Count(t.recipients));
  b += Row("bytes", "Bytes", html::Bytes(t.bytes));
  b += Row("seconds_held", "Senders held", html::Seconds(t.seconds_held));
  b += "</table></section>";
  b += "<section><h2>Now</h2><table class=\"kv\">";
  b += Row("open_connections", "Sessions open",
           html::Count(base::g_open_connections.load()));
  b += Row("held_connections", "Sessions held by the tarpit",
           html::Count(base::g_held_connections.load()));
  b += Row("last_minute_connections", "Connections, last minute",
           html::Count(s->last_minute.connections));
  b += Row("last_minute_messages", "Messages, last minute",
           html::Count(s->last_minute.messages));
  b += Row("last_hour_connections", "Connections, last hour",
           html::Count(s->last_hour.connections));
  b += Row("last_hour_messages", "Messages, last hour",
           html::Count(s->last_hour.messages));
  b += Row("pending_sources", "Sources not yet committed",
           html::Count(s->pending_sources));
  b += "</table></section>";
  b += "<section><h2>Tarpit cost</h2><table class=\"kv\">";
  b += Row("connection_seconds_per_cpu_second",
           "Sender connection-seconds per server CPU-second", ratio);
  b += Row("tarpit_sessions", "Sessions held",
           html::Count(counter(base::Counter::kTarpitSessions)));
  b += Row("tarpit_delay_seconds", "Delay imposed",
           html::Seconds(double(counter(base::Counter::kTarpitDelayUs)) / 1e6));
  b += Row("tarpit_stuttered", "Replies stuttered",
           html::Count(counter(base::Counter::kTarpitStuttered)));
  b += Row("tarpit_slow_reads", "Slow reads",
           html::Count(counter(base::Counter::kTarpitSlowReads)));
  b += Row("tarpit_retransmissions", "TCP retransmissions (held sessions)",
           html::Count(base::g_tarpit_retransmissions.load()));
  b += Row("cpu_seconds", "Server CPU", html::Seconds(cpu));
  b += Row("rss_bytes", "Server memory (RSS)", html::Bytes(ProcessRssBytes()));
  b += "</table></section></div>\n";
  // The chart: app.js draws it from /overview.json; the table below is
  // what a browser without JavaScript shows.
  b += "<section><h2>Per minute, last hour</h2><p class=\"key\"><span "
       "class=\"k-conn\">connections</span> and <span "
       "class=\"k-msg\">messages</span>, then <span "
       "class=\"k-bytes\">bytes</span></p>"
       "<div id=\"chart-minute\" class=\"chart\" role=\"img\" "
       "aria-label=\"connections and messages per minute\"></div>"
       "<div id=\"chart-bytes\" class=\"chart\" role=\"img\" "
       "aria-label=\"bytes per minute\"></div>"
       "<details class=\"nojs-series\"><summary>As a table</summary>"
       "<table><thead><tr><th>minute ending</th><th>connections</th>"
       "<th>messages</th><th>bytes</th></tr></thead><tbody>";
  auto windows = ledger_->RateSeries(kChartBucket, kChartBuckets);
  double end = std::floor(clock_->WallSeconds());
  for (size_t i = windows.size(); i-- > 0;) {
    const auto& w = windows[i];
    if (w.connections == 0 && w.messages == 0 && w.bytes == 0) continue;
    double t_end = end - double(kChartBucket) * double(windows.size() - 1 - i);
    b += "<tr><td>" + Escape(ledger::FormatTime(t_end)) + "</td><td>" +
         html::Count(w.connections) + "</td><td>" + html::Count(w.messages) +
         "</td><td>" + html::Count(w.bytes) + "</td></tr>";
  }
  b += "</tbody></table></details></section>\n";
  b += HourlySection(ledger_);
  return html::HtmlResponse(200, html::Page("Overview", "/", b, csrf));
}

Response Dashboard::Exports(const Request& r, const std::string& csrf) const {
  (void)r;
  std::string b =
      "<h1>Exports</h1>\n<p>Every format of <code>/api/v1/export</code>, "
      "with the filters below (exports list senders of at least one message "
      "unless <em>minimum messages</em> says 0). The same URLs work with "
      "<code>curl -H 'Authorization: Bearer …'</code>.</p>\n"
      "<form method=\"get\" action=\"/api/v1/export\" class=\"filters\">"
      "<label>Format <select name=\"format\">";
  static const char* kFormats[] = {"plain",
                                   "cidr",
                                   "csv",
                                   "jsonl",
                                   "rbldnsd",
                                   "rbldnsd_ip4set",
                                   "rbldnsd_ip6trie",
                                   "nftables",
                                   "postfix",
                                   "spamd"};
  for (const char* f : kFormats) {
    ledger::Format parsed;
    if (!ledger::ParseFormat(f, &parsed)) continue;
    b += "<option>" + Escape(f) + "</option>";
  }
  b += "</select></label>"
       "<label>CIDR <input name=\"cidr\" placeholder=\"192.0.2.0/24\"></label>"
       "<label>Minimum messages <input name=\"min_messages\" type=\"number\" "
       "min=\"0\" value=\"1\"></label>"
       "<label>Seen since <input name=\"since\" "
       "placeholder=\"2026-11-27T00:00:00Z\"></label>"
       "<button>Download</button></form>\n<h2>Direct links</h2><ul>";
  for (const char* f : kFormats) {
    ledger::Format parsed;
    if (!ledger::ParseFormat(f, &parsed)) continue;
    b += "<li><a href=\"/api/v1/export?format=" + html::UrlEncode(f) +
         "\" download>" + Escape(f) + "</a></li>";
  }
  b += "</ul>\n";
  // list=harvesters takes no source filter (the API answers 400 to one):
  // a form of its own.
  b += "<h2 id=\"harvesters\">Harvester addresses</h2><p>The addresses "
       "that took trap addresses (<a href=\"/harvesters\">Harvesters</a>), "
       "<code>list=harvesters</code>, in any format.</p>"
       "<form method=\"get\" action=\"/api/v1/export\" class=\"filters\">"
       "<input type=\"hidden\" name=\"list\" value=\"harvesters\">"
       "<label>Format <select name=\"format\">";
  for (const char* f : kFormats) {
    ledger::Format parsed;
    if (!ledger::ParseFormat(f, &parsed)) continue;
    b += "<option>" + Escape(f) + "</option>";
  }
  b += "</select></label><button>Download</button></form><ul "
       "id=\"harvester-links\">";
  for (const char* f : kFormats) {
    ledger::Format parsed;
    if (!ledger::ParseFormat(f, &parsed)) continue;
    b += "<li><a href=\"/api/v1/export?list=harvesters&amp;format=" +
         html::UrlEncode(f) + "\" download>" + Escape(f) + "</a></li>";
  }
  b += "</ul>\n";
  return html::HtmlResponse(200, html::Page("Exports", "/exports", b, csrf));
}

void Dashboard::SetServerInfo(ServerInfo info) {
  std::lock_guard lock(info_mu_);
  server_info_ = std::move(info);
}

void Dashboard::SetTokenSet(bool set) {
  std::lock_guard lock(info_mu_);
  token_set_ = set;
}

Response Dashboard::Server(const std::string& csrf) const {
  ServerInfo info;
  bool token_set;
  {
    std::lock_guard lock(info_mu_);
    info = server_info_;
    token_set = token_set_;
  }
  std::string b = "<h1>Server</h1>\n<table class=\"kv\">";
  b += Row("version", "Version", Escape(SPAMSINK_VERSION));
  b += Row("started", "Started", Escape(html::Time(start_time_)));
  b += Row("auth", "API authentication",
           token_set ? "token" : "none (loopback only)");
  for (const auto& [k, v] : info) {
    if (k == "config") continue;
    b += Row("info", Escape(k), Escape(v));
  }
  if (ledger_ != nullptr) {
    auto m = ledger_->Metrics();
    b += Row("store", "Ledger store",
             m.store_healthy ? "healthy" : "<strong>failing</strong>");
    b += Row(
        "pending", "Pending sources / bytes",
        html::Count(m.pending_sources) + " / " + html::Bytes(m.pending_bytes));
    b += Row("dropped", "Sessions dropped (pending budget)",
             html::Count(m.sessions_dropped));
    b +=
        Row("commits", "Commits (errors)",
            html::Count(m.commits) + " (" + html::Count(m.commit_errors) + ")");
  } else {
    b += Row("store", "Ledger", "disabled");
  }
  b += Row("peer_cache", "Peer cache / budget",
           html::Bytes(base::g_peer_cache_bytes.load()) + " / " +
               html::Bytes(base::g_peer_cache_budget_bytes.load()));
  b += "</table>\n";
  for (const auto& [k, v] : info) {
    if (k != "config") continue;
    b += "<h2>Effective configuration</h2><p>Secrets (api.token, "
         "traps.keys) are shown as <code>&quot;&lt;redacted&gt;&quot;</code> "
         "when set.</p><pre class=\"config\">" +
         Escape(v) + "</pre>\n";
  }
  b += "<p><a href=\"/assets/LICENSES.txt\">Licences of the embedded "
       "assets</a></p>\n";
  return html::HtmlResponse(200, html::Page("Server", "/server", b, csrf));
}

}  // namespace api
