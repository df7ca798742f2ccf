#include "api/handlers.h"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

#include "api/dashboard.h"
#include "api/trap_json.h"
#include "base/metrics.h"
#include "base/tarpit_cost.h"
#include "ledger/export.h"
#include "ledger/postgres_store.h"

namespace api {
namespace {

using json = nlohmann::ordered_json;

constexpr const char* kPrefix = "/api/v1/";

Response Json(int status, const json& body) {
  Response r;
  r.status = status;
  r.body = body.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  return r;
}

// Per-sink rows as JSON; with the PostgreSQL store only (one sink's own
// ledger has no breakdown to give).
json SinksJson(const std::vector<ledger::SinkCounts>& sinks) {
  json list = json::array();
  for (const auto& s : sinks) {
    list.push_back({{"sink_id", s.sink_id},
                    {"first_seen", ledger::FormatTime(s.first_seen)},
                    {"last_seen", ledger::FormatTime(s.last_seen)},
                    {"connections", s.connections},
                    {"messages", s.messages},
                    {"bytes", s.bytes}});
  }
  return list;
}

ledger::PostgresStore* FleetStore(ledger::Ledger* l) {
  return dynamic_cast<ledger::PostgresStore*>(l->store());
}

json WindowJson(const ledger::Window& w) {
  double s = w.seconds > 0 ? w.seconds : 1;
  return {{"seconds", w.seconds},
          {"connections", w.connections},
          {"messages", w.messages},
          {"recipients", w.recipients},
          {"bytes", w.bytes},
          {"connections_per_second", w.connections / s},
          {"messages_per_second", w.messages / s},
          {"bytes_per_second", w.bytes / s}};
}

Response Unavailable(const std::string& why) { return ErrorResponse(503, why); }

}  // namespace

bool IsLoopbackHost(std::string_view host) {
  if (host.empty()) return true;
  std::string_view name = host;
  if (name.front() == '[') {
    size_t close = name.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view after = name.substr(close + 1);
    if (!after.empty() && after.front() != ':') return false;
    name = name.substr(1, close - 1);
  } else if (size_t colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  std::string lower(name);
  for (char& c : lower) c = char(std::tolower((unsigned char)c));
  if (!lower.empty() && lower.back() == '.') lower.pop_back();
  constexpr std::string_view kLocal = "localhost";
  if (lower == kLocal) return true;
  if (lower.size() > kLocal.size() + 1 &&
      lower.compare(lower.size() - kLocal.size() - 1, std::string::npos,
                    ".localhost") == 0) {
    return true;
  }
  auto ip = base::IpAddress::Parse(lower);
  return ip.ok() && ip->IsLoopback();
}

Response ErrorResponse(int status, const std::string& message) {
  return Json(status, {{"error", message}, {"status", status}});
}

Response MethodNotAllowed() {
  Response r = ErrorResponse(405, "method not allowed: use GET or HEAD");
  r.headers.push_back({"Allow", "GET, HEAD"});
  return r;
}

Api::Api(ledger::Ledger* ledger, ApiOptions options, const base::Clock* clock)
    : ledger_(ledger),
      options_(std::move(options)),
      clock_(clock),
      start_time_(options_.start_time > 0 ? options_.start_time
                                          : clock->WallSeconds()),
      dashboard_(
          std::make_unique<Dashboard>(ledger, clock, &options_, start_time_)) {}

Api::~Api() = default;

void Api::SetTraps(ledger::TrapLedger* traps) {
  traps_ = traps;
  dashboard_->SetTraps(traps);
}

void Api::SetExempt(std::vector<base::Cidr> exempt) {
  std::lock_guard lock(exempt_mu_);
  options_.exempt = std::move(exempt);
}

void Api::SetToken(std::string token) {
  dashboard_->SetTokenSet(!token.empty());
  std::lock_guard lock(exempt_mu_);
  options_.token = std::move(token);
}

void Api::SetServerInfo(ServerInfo info) {
  dashboard_->SetServerInfo(std::move(info));
}

std::string Api::Token() const {
  std::lock_guard lock(exempt_mu_);
  return options_.token;
}

bool Api::Authorized(const Request& r) const {
  std::string token = Token();
  if (token.empty()) return true;
  if (r.authorization.empty() &&
      sessions_.Valid(CookieValue(r.cookie, kSessionCookie),
                      clock_->WallSeconds())) {
    return true;
  }
  constexpr std::string_view kBearer = "Bearer ";
  if (r.authorization.size() <= kBearer.size() ||
      r.authorization.compare(0, kBearer.size(), kBearer) != 0) {
    return false;
  }
  return SameSecret(r.authorization.substr(kBearer.size()), token);
}

Response Api::Handle(const Request& r) const {
  // Without a token the API trusts whoever can reach loopback; a browser
  // tricked by DNS rebinding reaches it too but sends the attacker's name
  // as Host. Refused before anything else, /healthz included.
  if (Token().empty() && !IsLoopbackHost(r.host)) {
    return ErrorResponse(403,
                         "Host is not a loopback name: without api.token "
                         "the API answers only requests for localhost");
  }
  if (r.path == "/healthz") {
    if (r.method != "GET" && r.method != "HEAD") {
      return MethodNotAllowed();
    }
    return Health();
  }
  if (Dashboard::Owns(r.path)) return Console(r);
  bool known = r.path == "/metrics" || r.path.rfind(kPrefix, 0) == 0;
  if (!known) return ErrorResponse(404, "no such endpoint: " + r.path);
  if (!Authorized(r)) {
    Response resp =
        ErrorResponse(401, r.authorization.empty() ? "missing bearer token"
                                                   : "wrong bearer token");
    resp.headers.push_back({"WWW-Authenticate", "Bearer realm=\"spamsink\""});
    return resp;
  }
  if (r.method != "GET" && r.method != "HEAD") {
    return MethodNotAllowed();
  }
  if (r.path == "/metrics") return Metrics();
  std::string rest = r.path.substr(std::string_view(kPrefix).size());
  if (rest == "sources") return Sources(r);
  if (rest.rfind("sources/", 0) == 0) return Source(rest.substr(8));
  if (rest == "stats") return Stats();
  if (rest == "cost") return Cost();
  if (rest == "export") return Export(r);
  if (rest == "harvesters") return Harvesters(r);
  if (rest == "captures") return Captures(r);
  if (rest == "captures.mbox") return CapturesMbox(r);
  if (rest.rfind("captures/", 0) == 0) return Capture(rest.substr(9));
  if (rest.rfind("feeds/misp/", 0) == 0) return MispFeed(rest.substr(11), r);
  return ErrorResponse(404, "no such endpoint: " + r.path);
}

// 503 when an operator must act: the store failing (what is observed then
// piles up in memory) or its pending-memory budget dropping sessions.
Response Api::Health() const {
  json body = {{"status", "ok"}, {"version", SPAMSINK_VERSION}};
  if (!memory_.source.empty()) {
    body["memory"] = {
        {"limit_bytes", memory_.limit},
        {"limit_source", memory_.source},
        {"reputation_budget_bytes", memory_.reputation_bytes},
        {"ledger_pending_budget_bytes", memory_.ledger_pending_bytes},
        {"seed_budget_bytes", memory_.seed_bytes},
        {"seeded_bytes", memory_.seeded_bytes}};
  }
  std::vector<std::string> problems;
  if (ledger_ == nullptr) {
    body["ledger"] = "disabled";
  } else {
    auto m = ledger_->Metrics();
    body["ledger"] = m.store_healthy ? "ok" : "store_failing";
    if (!m.store_healthy) {
      problems.push_back(
          "ledger store failing: commits are retried, records wait in "
          "memory (see the log's ledger_commit_failed)");
    }
    // The database's budget: reached means new sources evict old ones, not
    // an operator emergency (a 200), but visible here.
    if (m.usage.max_db_bytes != 0 || m.usage.max_sources != 0) {
      body["ledger_db"] = {{"bytes", m.usage.db_bytes},
                           {"budget_bytes", m.usage.max_db_bytes},
                           {"max_sources", m.usage.max_sources},
                           {"evicted", m.usage.evicted},
                           {"at_budget", m.usage.at_budget}};
    }
    uint64_t dropped = m.sessions_dropped;
    uint64_t seen = dropped_seen_.exchange(dropped);
    if (dropped > seen) {
      problems.push_back(
          "ledger pending memory full: sessions dropped since the last "
          "check (ledger.max_pending_bytes)");
    }
  }
  if (base::g_paused_accepts.load(std::memory_order_relaxed) > 0) {
    int64_t limit = base::g_memory_limit_bytes.load();
    bool memory =
        limit > 0 && base::g_memory_rss_bytes.load() * 10 >= limit * 9;
    problems.push_back(
        memory ? "listeners paused: resident memory over server.memory_limit; "
                 "held tarpit sessions are being cut"
               : "listeners paused: out of file descriptors "
                 "(server.fd_reserve); new connections wait until sessions "
                 "end");
  }
  if (problems.empty()) return Json(200, body);
  body["status"] = "failing";
  body["reasons"] = problems;
  return Json(503, body);
}

Response Api::Sources(const Request& r) const {
  if (ledger_ == nullptr) return Unavailable("ledger disabled");
  auto q = ledger::ParseQuery(r.params, {}, options_.default_page,
                              options_.max_page);
  if (!q.ok()) return ErrorResponse(400, q.error());
  if (q->offset > options_.max_offset) {
    return ErrorResponse(
        400, "bad offset: must be at most " +
                 std::to_string(options_.max_offset) +
                 " (page deeper with after=, the previous page's \"next\")");
  }
  auto page = ledger_->Sources(*q);
  if (!page.ok()) return Unavailable("store: " + page.error());
  json list = json::array();
  for (const auto& rec : page->records)
    list.push_back(ledger::SourceToJson(rec));
  // A full page may have a next one: its cursor (null after the last).
  json next = nullptr;
  if (!page->records.empty() && page->records.size() == q->limit) {
    next = ledger::FormatCursor(q->sort, page->records.back());
  }
  json body = {{"total", page->total},
               {"offset", q->offset},
               {"limit", q->limit},
               {"sort", ledger::SortKeyName(q->sort)},
               {"order", q->ascending ? "asc" : "desc"}};
  if (q->sink) body["sink"] = *q->sink;
  body["next"] = std::move(next);
  body["sources"] = std::move(list);
  return Json(200, body);
}

Response Api::Source(const std::string& text) const {
  if (ledger_ == nullptr) return Unavailable("ledger disabled");
  auto ip = base::IpAddress::Parse(text);
  if (!ip.ok()) return ErrorResponse(400, ip.error());
  auto rec = ledger_->Source(*ip);
  if (!rec.ok()) return Unavailable("store: " + rec.error());
  if (!rec->has_value()) {
    return ErrorResponse(404, "no record for " + ip->ToString());
  }
  json body = ledger::SourceToJson(**rec);
  // Sessions and messages per hour, as long as the ledger keeps them
  // (ledger.hourly_retention_days), oldest first.
  auto hours = ledger_->SourceHours(*ip, 0);
  if (!hours.ok()) return Unavailable("store: " + hours.error());
  json per_hour = json::array();
  for (const auto& h : *hours) {
    per_hour.push_back({{"hour", ledger::FormatTime(double(h.hour))},
                        {"sessions", h.sessions},
                        {"messages", h.messages}});
  }
  body["per_hour"] = per_hour;
  if (auto* fleet = FleetStore(ledger_)) {
    auto sinks = fleet->Sinks(*ip);
    if (!sinks.ok()) return Unavailable("store: " + sinks.error());
    body["sinks"] = SinksJson(*sinks);
  }
  if (traps_) {
    auto links = traps_->LinksOf(ip->ToString());
    if (links.ok()) body["harvesters"] = TrapLinksJson(*links);
  }
  return Json(200, body);
}

Response Api::Harvesters(const Request& r) const {
  if (traps_ == nullptr) return Unavailable("trap attribution off");
  auto harvesters = traps_->Harvesters(options_.max_page);
  if (!harvesters.ok()) return Unavailable(harvesters.error());
  auto domains = traps_->Domains();
  if (!domains.ok()) return Unavailable(domains.error());
  return Json(200, HarvestersJson(*harvesters, *domains));
}

Response Api::Stats() const {
  if (ledger_ == nullptr) return Unavailable("ledger disabled");
  auto s = ledger_->GetStats();
  if (!s.ok()) return Unavailable("store: " + s.error());
  const auto& t = s->totals;
  json server = json::object();
  for (const auto& c : base::SnapshotCounters()) {
    server[std::string(c.name)] = c.value;
  }
  server["open_connections"] = base::g_open_connections.load();
  json sinks;
  if (auto* fleet = FleetStore(ledger_)) {
    auto per_sink = fleet->SinkTotals();
    if (!per_sink.ok()) return Unavailable("store: " + per_sink.error());
    sinks = SinksJson(*per_sink);
  }
  json body = {{"totals",
                {{"sources", t.sources},
                 {"connections", t.connections},
                 {"messages", t.messages},
                 {"recipients", t.recipients},
                 {"bytes", t.bytes},
                 {"seconds_held", std::round(t.seconds_held * 1000) / 1000}}},
               {"last_minute", WindowJson(s->last_minute)},
               {"last_hour", WindowJson(s->last_hour)},
               {"pending_sources", s->pending_sources},
               {"server", std::move(server)},
               {"time", ledger::FormatTime(clock_->WallSeconds())}};
  if (!sinks.is_null()) body["sinks"] = std::move(sinks);
  return Json(200, body);
}

// The asymmetry the tarpit buys: how long senders were kept connected for
// each second of CPU the server spent.
Response Api::Cost() const {
  if (ledger_ == nullptr) return Unavailable("ledger disabled");
  auto s = ledger_->GetStats();
  if (!s.ok()) return Unavailable("store: " + s.error());
  double cpu = 0;
  if (options_.cpu_seconds) {
    cpu = options_.cpu_seconds();
  } else {
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    cpu = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
          double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  auto counter = [](base::Counter c) { return base::CounterTotal(c); };
  double held = s->totals.seconds_held;
  json body = {
      {"sender_connection_seconds", std::round(held * 1000) / 1000},
      {"server_cpu_seconds", std::round(cpu * 1000) / 1000},
      {"connection_seconds_per_cpu_second",
       cpu > 0 ? std::round(held / cpu * 10) / 10 : 0.0},
      {"messages", s->totals.messages},
      {"bytes", s->totals.bytes},
      {"tarpit",
       {{"sessions_held", counter(base::Counter::kTarpitSessions)},
        {"delay_seconds", double(counter(base::Counter::kTarpitDelayUs)) / 1e6},
        {"replies_stuttered", counter(base::Counter::kTarpitStuttered)},
        {"slow_reads", counter(base::Counter::kTarpitSlowReads)},
        {"retransmissions", base::g_tarpit_retransmissions.load()},
        {"early_talkers", counter(base::Counter::kEarlyTalkers)},
        {"shed", counter(base::Counter::kTarpitShed)}}},
      {"note",
       "sender_connection_seconds counts committed sessions (one flush "
       "interval behind); server_cpu_seconds is this process since start"}};
  return Json(200, body);
}

Response Api::Export(const Request& r) const {
  if (ledger_ == nullptr) return Unavailable("ledger disabled");
  auto options = ledger::ParseExportOptions(r.params);
  if (!options.ok()) return ErrorResponse(400, options.error());
  options.value().record_v6_prefix = ledger_->ipv6_prefix();
  // Exports list everything that matches unless a limit is given.
  auto q = ledger::ParseQuery(r.params, ledger::ExportOptionKeys(), 0, 0);
  if (!q.ok()) return ErrorResponse(400, q.error());
  ledger::ExportQueryDefaults(r.params, &q.value());
  options.value().now = clock_->WallSeconds();
  {
    std::lock_guard lock(exempt_mu_);
    options.value().exempt = options_.exempt;
  }
  if (options->list == ledger::ExportList::kHarvesters) {
    return ExportHarvesters(r, *options);
  }
  // A store that cannot answer is a 503 before any byte is sent.
  if (auto t = ledger_->GetStats(); !t.ok()) {
    return Unavailable("store: " + t.error());
  }
  Response resp;
  resp.content_type = ledger::ContentType(options->format);
  resp.stream = [ledger = ledger_, query = *q,
                 o = *options](const ledger::Sink& sink) {
    return ledger->ExportSources(query, o, sink);
  };
  return resp;
}

Response Api::ExportHarvesters(const Request& r,
                               const ledger::ExportOptions& o) const {
  if (traps_ == nullptr) return Unavailable("trap attribution off");
  const auto& keys = ledger::ExportOptionKeys();
  for (const auto& [key, value] : r.params) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      return ErrorResponse(
          400, "list=harvesters takes no source filter (" + key + ")");
    }
  }
  Response resp;
  resp.content_type = ledger::ContentType(o.format);
  resp.stream = [traps = traps_, o](const ledger::Sink& sink) {
    return ledger::ExportHarvesters(traps, o, sink);
  };
  return resp;
}

Response Api::Metrics() const {
  Response resp;
  resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
  base::ServerGauges gauges;
  gauges.open_connections = base::g_open_connections.load();
  gauges.held_connections = base::g_held_connections.load();
  gauges.paused_accepts = base::g_paused_accepts.load();
  gauges.peer_cache_bytes = base::g_peer_cache_bytes.load();
  gauges.peer_cache_budget_bytes = base::g_peer_cache_budget_bytes.load();
  gauges.memory_rss_bytes = base::g_memory_rss_bytes.load();
  gauges.memory_limit_bytes = base::g_memory_limit_bytes.load();
  gauges.start_time = start_time_;
  gauges.version = SPAMSINK_VERSION;
  auto metrics = base::ServerMetrics(base::SnapshotCounters(), gauges);
  base::Metric retrans;
  retrans.name = "tarpit_retransmissions_total";
  retrans.help =
      "TCP segments the sink retransmitted to tarpitted senders (TCP_INFO "
      "at each held session's close)";
  retrans.value = double(base::g_tarpit_retransmissions.load());
  metrics.push_back(std::move(retrans));
  if (!memory_.source.empty()) {
    // Each budget beside its use (the reputation's and the RSS are above,
    // the ledger's pending bytes below).
    using Type = base::Metric::Type;
    auto gauge = [&](std::string name, std::string help, std::string labels,
                     double v) {
      metrics.push_back({.name = std::move(name),
                         .help = std::move(help),
                         .labels = std::move(labels),
                         .type = Type::kGauge,
                         .value = v});
    };
    gauge("memory_limit_source",
          "where server.memory_limit came from (config, cgroup, meminfo, "
          "off, unknown)",
          "source=\"" + memory_.source + "\"", 1);
    gauge("ledger_pending_budget_bytes", "ledger.max_pending_bytes as applied",
          "", double(memory_.ledger_pending_bytes));
    gauge("reputation_seed_budget_bytes", "server.seed_bytes as applied", "",
          double(memory_.seed_bytes));
    gauge("reputation_seed_bytes", "reputation bytes the start-up seed took",
          "", double(memory_.seeded_bytes));
  }
  if (ledger_ != nullptr) {
    auto more = ledger_->PrometheusMetrics();
    metrics.insert(metrics.end(), std::make_move_iterator(more.begin()),
                   std::make_move_iterator(more.end()));
  }
  for (const auto& source : more_metrics_) {
    auto more = source();
    metrics.insert(metrics.end(), std::make_move_iterator(more.begin()),
                   std::make_move_iterator(more.end()));
  }
  resp.body = base::RenderPrometheus(metrics);
  return resp;
}

}  // namespace api
