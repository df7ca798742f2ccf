// smtpsend: the load generator. Wiring only: parse the command line, check
// the target, run net::RunSender, print the report.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "net/sender_driver.h"
#include "sender/report.h"

namespace {

constexpr const char* kDescription = R"(NAME
  smtpsend - SMTP load generator and benchmark client

SYNOPSIS
  smtpsend [options] [host]

DESCRIPTION
  Connects to the SMTP server on host (default 127.0.0.1, port 25), sends
  generated messages as fast as the server answers (closed loop, -s sessions
  at once) or at a fixed arrival rate (open loop, --rate), and prints how it
  went. Exactly like the original smtpsend, at least one of -n (a message
  count) and -t (a duration) bounds the run; given both, whichever ends
  first. Every message ends in one class: accepted, rejected (temporary 4xx
  or permanent 5xx), failed (connect, timeout, protocol) or aborted (on
  purpose, --abort-in-data).

  For safety, only loopback targets (127.0.0.0/8, ::1) are allowed unless
  --allow-remote is given.)";

constexpr const char* kFooter = R"(OUTPUT
  The original three closing lines (with sub-second precision):
    Sent N messages in S seconds
    Sending rate: X messages/minute, Y messages/second
    Average delivery time: Z seconds/message
  N counts accepted messages. Then counts by class, throughput (messages/s,
  MB/s, connections/s), latency percentiles (p50, p90, p99, max) per phase,
  time held by the server (all waits for replies: what a tarpit costs) and
  TCP retransmissions. --json prints one JSON object instead. On a terminal
  a live progress line is shown while running.

EXIT STATUS
  0  every message was accepted (or aborted on purpose)
  1  some message was rejected or failed (0 with --ignore-failures)
  2  bad command line or start-up failure

EXAMPLES
  smtpsend -n 100                      100 messages to 127.0.0.1:25
  smtpsend -s 100 -m 100 -n 100000 -p 2525
  smtpsend -t 30 --rate 500 -s 2000 -b 10240 ::1
  smtpsend -s 10000 -n 10000 --hold 30 --source-range 127.1.0.0/16
  smtpsend -n 1000 --proxy v2 --proxy-clients 198.51.100.0/24
  smtpsend -n 50 --early-talk 0.5 --abort-in-data 0.2 --phase-timeout 5

SEE ALSO
  smtpsend(1), spamsink(8), smtp-source(1))";

class StderrTracer final : public sender::Tracer {
 public:
  void Line(uint64_t session, bool from_client,
            std::string_view line) override {
    std::string out = std::to_string(session) + (from_client ? " -> " : " <- ");
    out.append(line);
    out += '\n';
    std::fwrite(out.data(), 1, out.size(), stderr);
  }
};

void OnSignal(int) {
  static std::atomic<int> count{0};
  if (count.fetch_add(1) > 0) _exit(130);
  net::RequestSenderStop();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(kDescription, "smtpsend");
  app.footer(kFooter);
  app.get_formatter()->column_width(34);
  net::SenderOptions o;
  std::string host = "127.0.0.1";
  int port = 25;
  int64_t size = -1, size_min = -1, size_max = -1;
  int verbose = 0;
  double starttls_share = 0, early_talk = 0, abort_share = 0;
  double phase_timeout = 60, hold = 0;
  std::string proxy, body_file;
  bool json = false, no_progress = false, allow_remote = false,
       ignore_failures = false, brief = false, no_pipelining = false;

  app.add_option("host", host, "Server address or name")->capture_default_str();
  auto* load = "Load";
  app.add_option("-s,--senders", o.senders,
                 "Parallel sessions (open loop: the cap on sessions)")
      ->group(load)
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("-m,--messages-per-connection",
                 o.setup.messages_per_connection,
                 "Messages sent per connection")
      ->group(load)
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000000));
  app.add_option(
         "-n,--count", o.total_messages,
         "Send until n messages are accepted (failures are retried, at most n "
         "times)")
      ->group(load)
      ->check(CLI::PositiveNumber);
  app.add_option("-t,--time", o.duration, "Run for n seconds")
      ->group(load)
      ->check(CLI::PositiveNumber);
  app.add_option("--rate", o.rate,
                 "Open loop: start messages at this rate (messages/s)")
      ->group(load)
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads, "I/O threads (one io_context each)")
      ->group(load)
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("-p,--port", port, "Port number to connect to")
      ->group(load)
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));

  auto* msg = "Message";
  app.add_option("-b,--size", size, "Message body size in bytes (1024)")
      ->group(msg)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--size-min", size_min, "Smallest body of a size range")
      ->group(msg)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--size-max", size_max, "Largest body of a size range")
      ->group(msg)
      ->check(CLI::NonNegativeNumber);
  app.add_option("-F,--from", o.shape.from, "Sender address")
      ->group(msg)
      ->capture_default_str();
  app.add_option("-T,--to", o.shape.to,
                 "Recipient address (+1, +2... with --recipients)")
      ->group(msg)
      ->capture_default_str();
  app.add_option("-S,--subject", o.shape.subject, "Subject of the message")
      ->group(msg)
      ->capture_default_str();
  app.add_option("--recipients", o.shape.recipients, "Recipients per message")
      ->group(msg)
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--body-file", body_file,
                 "Send this file as the body (after generated headers)")
      ->group(msg)
      ->check(CLI::ExistingFile);
  app.add_option("--helo", o.setup.helo_name, "Name given in EHLO/HELO")
      ->group(msg)
      ->capture_default_str();

  auto* proto = "Protocol";
  app.add_flag("--no-pipelining", no_pipelining,
               "Never pipeline, even when PIPELINING is advertised")
      ->group(proto);
  app.add_flag("--bulk", o.setup.bulk,
               "Pipeline like a bulk sender: content right after DATA, the "
               "next transaction before this one's reply (needs PIPELINING)")
      ->group(proto);
  app.add_flag("--bdat", o.setup.bdat, "Use BDAT when CHUNKING is advertised")
      ->group(proto);
  app.add_option(
         "--starttls-share", starttls_share,
         "Share of sessions that use STARTTLS (0..1; any certificate unless "
         "--tls-verify)")
      ->group(proto)
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--tls-name", o.tls_name,
                 "STARTTLS: name sent as SNI and verified with --tls-verify "
                 "(default: the host, when it is a name)")
      ->group(proto);
  app.add_flag("--tls-verify", o.tls_verify,
               "STARTTLS: verify the server's certificate (system CAs) and "
               "name; a failed check fails the session")
      ->group(proto);
  app.add_option("--tls-ca", o.tls_ca_file,
                 "STARTTLS: PEM file of CAs to trust (implies --tls-verify)")
      ->group(proto);
  app.add_option("--proxy", proxy, "Send a PROXY header first: v1 or v2")
      ->group(proto)
      ->check(CLI::IsMember({"v1", "v2", "1", "2"}));
  app.add_option("--proxy-clients", o.proxy_clients,
                 "Synthetic client addresses for --proxy (CIDR)")
      ->group(proto)
      ->capture_default_str();
  app.add_option("--source-range", o.source_range,
                 "Bind each session to one address of this CIDR "
                 "(e.g. 127.1.0.0/16: one machine, many senders)")
      ->group(proto);

  auto* bots = "Bot emulation";
  app.add_option("--early-talk", early_talk,
                 "Share of sessions sending EHLO before the banner (0..1)")
      ->group(bots)
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--abort-in-data", abort_share,
                 "Share of messages abandoned half-way through DATA (0..1)")
      ->group(bots)
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--phase-timeout", phase_timeout,
                 "Give up when one phase (connect, a reply, a write) takes "
                 "longer than this many seconds")
      ->group(bots)
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--hold", hold,
                 "Idle this many seconds after EHLO before sending (held "
                 "connections)")
      ->group(bots)
      ->check(CLI::NonNegativeNumber);

  auto* out = "Output and safety";
  app.add_flag("-v,--verbose", verbose,
               "Show the SMTP dialogue on stderr (twice: with DATA)")
      ->group(out);
  app.add_flag("--json", json, "Print the report as one JSON object")
      ->group(out);
  app.add_flag("--brief", brief, "Print only the three classic lines")
      ->group(out);
  app.add_flag("--no-progress", no_progress, "No live progress line")
      ->group(out);
  app.add_flag("--ignore-failures", ignore_failures,
               "Exit 0 even when messages failed")
      ->group(out);
  app.add_flag("--allow-remote", allow_remote,
               "Allow a target outside loopback")
      ->group(out);
  app.add_option("--seed", o.seed, "Random seed (0: from the clock)")
      ->group(out);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (o.total_messages <= 0 && o.duration <= 0) {
    std::cerr << "smtpsend: give -n messages or -t seconds (see --help)\n";
    return 2;
  }
  o.host = host;
  o.port = uint16_t(port);
  if (size >= 0) o.shape.size_min = o.shape.size_max = size;
  if (size_min >= 0) o.shape.size_min = size_min;
  if (size_max >= 0) o.shape.size_max = size_max;
  if (size_min >= 0 && size_max < 0 && size < 0)
    o.shape.size_max = std::max(size_min, o.shape.size_max);
  if (!body_file.empty()) {
    std::ifstream f(body_file, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    o.shape.body_text = ss.str();
    if (o.shape.body_text.empty()) {
      std::cerr << "smtpsend: " << body_file << " is empty\n";
      return 2;
    }
  }
  o.shape.helo_name = o.setup.helo_name;
  o.setup.pipelining = !no_pipelining;
  o.setup.starttls_share = starttls_share;
  o.setup.early_talk_share = early_talk;
  o.setup.abort_share = abort_share;
  o.setup.verbose = verbose;
  auto secs = [](double s) {
    return std::chrono::duration_cast<base::Duration>(
        std::chrono::duration<double>(s));
  };
  o.setup.phase_timeout = secs(phase_timeout);
  o.setup.hold = secs(hold);
  if (!proxy.empty()) o.proxy_version = proxy.back() == '1' ? 1 : 2;

  auto ip = net::ResolveHost(host);
  if (!ip.ok()) {
    std::cerr << "smtpsend: " << ip.error() << "\n";
    return 2;
  }
  if (!ip->IsLoopback() && !allow_remote) {
    std::cerr << "smtpsend: refusing to load " << ip->ToString()
              << ", which is not loopback; add --allow-remote if you own it\n";
    return 2;
  }
  o.host = ip->ToString();
  uint64_t fds = net::RaiseFileLimit();
  if (uint64_t(o.senders) + 64 > fds)
    std::cerr << "smtpsend: warning: " << o.senders << " sessions but only "
              << fds << " file descriptors\n";

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  StderrTracer tracer;
  bool tty = isatty(STDOUT_FILENO) && !json && !no_progress && verbose == 0;
  bool announced = false;
  auto progress = [&](const sender::Progress& p, double elapsed) {
    uint64_t holding = p.sessions_holding.load(std::memory_order_relaxed);
    if (hold > 0 && !announced && holding >= uint64_t(o.senders)) {
      announced = true;
      std::fprintf(stderr, "smtpsend: holding %llu sessions\n",
                   (unsigned long long)holding);
    }
    if (!tty) return;
    uint64_t done = p.messages_done.load(std::memory_order_relaxed);
    std::string line = sender::RenderProgress(
        elapsed > 0 ? double(done) / elapsed : 0, done, o.total_messages,
        p.messages_bad.load(std::memory_order_relaxed),
        p.sessions_open.load(std::memory_order_relaxed));
    std::printf("\r%s\033[K", line.c_str());
    std::fflush(stdout);
  };
  auto result = net::RunSender(o, verbose ? &tracer : nullptr, progress);
  if (tty) std::printf("\r\033[K");
  if (!result.ok()) {
    std::cerr << "smtpsend: " << result.error() << "\n";
    return 2;
  }
  sender::RunInfo info;
  info.target =
      (ip->is_v4() ? o.host : "[" + o.host + "]") + ":" + std::to_string(port);
  info.senders = o.senders;
  info.messages_per_connection = o.setup.messages_per_connection;
  info.rate = o.rate;
  info.elapsed_s = result->elapsed_s;
  info.client_cpu_s = result->cpu_s;
  info.threads = o.threads;
  const sender::Stats& s = result->stats;
  if (json) {
    std::cout << sender::RenderJson(s, info);
  } else {
    std::cout << sender::RenderClassic(s, info);
    if (!brief) std::cout << "\n" << sender::RenderDetails(s, info);
  }
  std::cout.flush();
  return s.FailedMessages() > 0 && !ignore_failures ? 1 : 0;
}
