#include "sender/report.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace sender {

namespace {

std::string Format(const char* fmt, auto... args) {
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, fmt, args...);
  return std::string(buf,
                     size_t(std::max(0, std::min(n, int(sizeof buf) - 1))));
}

double Per(double n, double d) { return d > 0 ? n / d : 0; }
double Ms(int64_t ns) { return double(ns) / 1e6; }

uint64_t Msg(const Stats& s, Outcome o) { return s.messages[int(o)]; }
uint64_t Sess(const Stats& s, Outcome o) { return s.sessions[int(o)]; }

}  // namespace

std::string RenderClassic(const Stats& s, const RunInfo& info) {
  double sent = double(Msg(s, Outcome::kAccepted));
  double t = info.elapsed_s;
  std::string out = Format("Sent %llu messages in %.3f seconds\n",
                           (unsigned long long)sent, t);
  out += Format("Sending rate: %8.2f messages/minute, %8.2f messages/second\n",
                Per(sent * 60, t), Per(sent, t));
  out += Format("Average delivery time: %8.6f seconds/message\n", Per(t, sent));
  return out;
}

std::string RenderDetails(const Stats& s, const RunInfo& info) {
  using O = Outcome;
  double t = info.elapsed_s;
  std::string out;
  out += Format(
      "sessions: %llu (clean %llu; failed: connect %llu, timeout %llu, "
      "protocol %llu, temporary %llu, permanent %llu; aborted %llu)\n",
      (unsigned long long)s.TotalSessions(),
      (unsigned long long)Sess(s, O::kAccepted),
      (unsigned long long)Sess(s, O::kFailedConnect),
      (unsigned long long)Sess(s, O::kFailedTimeout),
      (unsigned long long)Sess(s, O::kFailedProtocol),
      (unsigned long long)Sess(s, O::kRejectedTemporary),
      (unsigned long long)Sess(s, O::kRejectedPermanent),
      (unsigned long long)Sess(s, O::kAborted));
  out += Format(
      "messages: %llu: accepted %llu, rejected %llu (temporary %llu, "
      "permanent %llu), failed %llu (connect %llu, timeout %llu, protocol "
      "%llu), aborted %llu\n",
      (unsigned long long)s.TotalMessages(),
      (unsigned long long)Msg(s, O::kAccepted),
      (unsigned long long)(Msg(s, O::kRejectedTemporary) +
                           Msg(s, O::kRejectedPermanent)),
      (unsigned long long)Msg(s, O::kRejectedTemporary),
      (unsigned long long)Msg(s, O::kRejectedPermanent),
      (unsigned long long)(Msg(s, O::kFailedConnect) +
                           Msg(s, O::kFailedTimeout) +
                           Msg(s, O::kFailedProtocol)),
      (unsigned long long)Msg(s, O::kFailedConnect),
      (unsigned long long)Msg(s, O::kFailedTimeout),
      (unsigned long long)Msg(s, O::kFailedProtocol),
      (unsigned long long)Msg(s, O::kAborted));
  out += Format("recipients: accepted %llu, rejected %llu\n",
                (unsigned long long)s.recipients_accepted,
                (unsigned long long)s.recipients_rejected);
  if (s.tls_sessions || s.tls_unavailable || s.helo_fallbacks ||
      s.early_talkers || s.held_sessions || s.queued_arrivals)
    out += Format(
        "extras: starttls %llu (unavailable %llu), helo fallbacks %llu, "
        "early talkers %llu, held %llu, queued arrivals %llu (deepest "
        "queue %llu)\n",
        (unsigned long long)s.tls_sessions,
        (unsigned long long)s.tls_unavailable,
        (unsigned long long)s.helo_fallbacks,
        (unsigned long long)s.early_talkers,
        (unsigned long long)s.held_sessions,
        (unsigned long long)s.queued_arrivals,
        (unsigned long long)s.max_queue_depth);
  out += Format(
      "throughput: %.1f messages/s, %.2f MB/s, %.1f connections/s "
      "over %.3f s\n",
      Per(double(Msg(s, O::kAccepted)), t),
      Per(double(s.content_bytes), t) / 1e6, Per(double(s.TotalSessions()), t),
      t);
  if (info.client_cpu_s > 0)
    out += Format("client cpu: %.3f s, %.2f us/message\n", info.client_cpu_s,
                  Per(info.client_cpu_s * 1e6, double(s.TotalMessages())));
  out += Format("%-12s %9s %10s %10s %10s %10s\n", "latency(ms)", "count",
                "p50", "p90", "p99", "max");
  for (int i = 0; i < int(Phase::kCount); ++i) {
    const Histogram& h = s.phase[i];
    if (h.count() == 0) continue;
    out += Format("%-12s %9llu %10.3f %10.3f %10.3f %10.3f\n",
                  std::string(PhaseName(Phase(i))).c_str(),
                  (unsigned long long)h.count(), Ms(h.Percentile(50)),
                  Ms(h.Percentile(90)), Ms(h.Percentile(99)), Ms(h.max()));
  }
  const Histogram& h = s.held;
  out += Format(
      "held by server: %.3f s in total; per session p50 %.3f p90 %.3f "
      "p99 %.3f max %.3f ms\n",
      double(s.held_ns_total) / 1e9, Ms(h.Percentile(50)), Ms(h.Percentile(90)),
      Ms(h.Percentile(99)), Ms(h.max()));
  out += Format(
      "tcp retransmissions: %llu in total; per session mean %.3f max %lld\n",
      (unsigned long long)s.retrans_total, s.retrans.mean(),
      (long long)s.retrans.max());
  return out;
}

std::string RenderJson(const Stats& s, const RunInfo& info) {
  using nlohmann::json;
  double t = info.elapsed_s;
  json j;
  j["target"] = info.target;
  j["mode"] = info.rate > 0 ? "open" : "closed";
  j["senders"] = info.senders;
  j["messages_per_connection"] = info.messages_per_connection;
  j["rate"] = info.rate;
  j["threads"] = info.threads;
  j["elapsed_s"] = t;
  j["client_cpu_s"] = info.client_cpu_s;
  json m, ss;
  for (int i = 0; i < int(Outcome::kCount); ++i) {
    m[std::string(OutcomeName(Outcome(i)))] = s.messages[i];
    ss[std::string(OutcomeName(Outcome(i)))] = s.sessions[i];
  }
  m["total"] = s.TotalMessages();
  m["failed_unexpectedly"] = s.FailedMessages();
  ss["total"] = s.TotalSessions();
  j["messages"] = m;
  j["sessions"] = ss;
  j["recipients"] = {{"accepted", s.recipients_accepted},
                     {"rejected", s.recipients_rejected}};
  j["bytes"] = {{"content", s.content_bytes},
                {"written", s.bytes_written},
                {"read", s.bytes_read}};
  j["extras"] = {{"starttls", s.tls_sessions},
                 {"starttls_unavailable", s.tls_unavailable},
                 {"helo_fallbacks", s.helo_fallbacks},
                 {"early_talkers", s.early_talkers},
                 {"held_sessions", s.held_sessions},
                 {"queued_arrivals", s.queued_arrivals},
                 {"max_queue_depth", s.max_queue_depth}};
  double accepted = double(s.messages[int(Outcome::kAccepted)]);
  j["rates"] = {{"messages_per_s", Per(accepted, t)},
                {"mb_per_s", Per(double(s.content_bytes), t) / 1e6},
                {"connections_per_s", Per(double(s.TotalSessions()), t)}};
  auto hist = [](const Histogram& h, double scale) {
    return json{{"count", h.count()},
                {"p50", double(h.Percentile(50)) / scale},
                {"p90", double(h.Percentile(90)) / scale},
                {"p99", double(h.Percentile(99)) / scale},
                {"max", double(h.max()) / scale},
                {"mean", h.mean() / scale}};
  };
  json lat;
  for (int i = 0; i < int(Phase::kCount); ++i)
    lat[std::string(PhaseName(Phase(i)))] = hist(s.phase[i], 1e6);
  j["latency_ms"] = lat;
  j["held_by_server"] = {{"total_s", double(s.held_ns_total) / 1e9},
                         {"per_session_ms", hist(s.held, 1e6)}};
  j["tcp_retransmissions"] = {{"total", s.retrans_total},
                              {"per_session", hist(s.retrans, 1)}};
  return j.dump(2) + "\n";
}

std::string RenderProgress(double rate, uint64_t done, int64_t total,
                           uint64_t bad, uint64_t open) {
  if (total > 0)
    return Format("%9.1f msg/s  %llu/%lld done  %llu errors  %llu open", rate,
                  (unsigned long long)done, (long long)total,
                  (unsigned long long)bad, (unsigned long long)open);
  return Format("%9.1f msg/s  %llu done  %llu errors  %llu open", rate,
                (unsigned long long)done, (unsigned long long)bad,
                (unsigned long long)open);
}

}  // namespace sender
