// Listeners, accept loops, the sweeper and shutdown. A connection's life is
// in session.cc.
#include "net/server.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <asio/ssl.hpp>
#include <random>

#include "base/log.h"
#include "base/metrics.h"
#include "base/thread_kind.h"
#include "net/server_impl.h"

namespace net {
namespace {

using base::Count;
using base::Counter;
using peer::CloseReason;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

std::string EndpointText(const tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" +
         std::to_string(ep.port());
}

}  // namespace

base::IpAddress ToIp(const asio::ip::address& a) {
  if (a.is_v4()) return base::IpAddress::FromV4(a.to_v4().to_uint());
  auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) {
    return base::IpAddress::FromV4(
        asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_uint());
  }
  return base::IpAddress::FromV6(v6.to_bytes());
}

// server.executor: io_uring where asked for (or, with "auto", where the
// kernel allows it); asio otherwise. A demanded but unusable io_uring is
// an error at Bind().
void Server::Impl::ChooseExecutor() {
  const std::string& want = p.server.executor;
  if (want == "asio") {
    executor_reason = "configured";
    return;
  }
  std::string why = p.uring_probe ? p.uring_probe() : ProbeUring();
  if (why.empty()) {
    for (auto& w : workers) {
      if (!MakeUring(*w, &why)) break;
    }
  }
  if (why.empty()) {
    executor = ExecutorKind::kUring;
    executor_reason =
        want == "auto" ? "auto: io_uring is usable" : "configured";
    return;
  }
  for (auto& w : workers) w->uring.reset();
  if (want == "io_uring") {
    executor_error =
        "server.executor = io_uring, but io_uring is unusable here: " + why +
        "; use executor \"auto\" or \"asio\"";
    return;
  }
  executor_reason = "auto: io_uring is unusable: " + why;
}

Server::Server(ServerParams params)
    : impl_(std::make_unique<Impl>(params.ipv6_prefix,
                                   params.server.reputation_bytes > 0
                                       ? size_t(params.server.reputation_bytes)
                                       : peer::Cache::kDefaultBudgetBytes)) {
  impl_->p = std::move(params);
  // Kept open: worker 0 reads it at every sweep, and SMTP workers may not
  // open files once the sandbox is on (app/sandbox.h).
  impl_->statm_fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  for (const auto& n : impl_->p.server.proxy_trusted) {
    auto c = base::Cidr::Parse(n);
    if (c.ok()) impl_->trusted.push_back(*c);
  }
  const auto& cfg = impl_->p;
  impl_->live.push_back(impl_->MakeLive(cfg));
  const Live* live = impl_->live.back().get();
  impl_->current = live;
  int threads = cfg.server.threads;
  if (threads <= 0)
    threads = int(std::max(1u, std::thread::hardware_concurrency()));
  // Random per process, so that no two instances pace, stutter or number
  // their queue ids alike.
  std::random_device entropy;
  for (int i = 0; i < threads; ++i) {
    uint64_t seed = (uint64_t(entropy()) << 32) ^ entropy();
    auto w = std::make_unique<Worker>(i, seed);
    w->env = conn::Env{&live->limits,  &live->session, &live->tarpit,
                       impl_->p.clock, &w->rng,        &w->output,
                       &impl_->host,   &impl_->gauges, &w->stopping};
    w->env.plans = &w->plans;
    impl_->workers.push_back(std::move(w));
  }
  impl_->ChooseExecutor();
  double shortest = std::min(cfg.smtp.idle_timeout, cfg.smtp.session_timeout);
  shortest = std::min(shortest, cfg.server.proxy_timeout);
  impl_->sweep_period = std::clamp(milliseconds(int64_t(shortest * 1000 / 8)),
                                   milliseconds(20), milliseconds(1000));
  // Descriptors: take all the kernel allows us; keep fd_reserve spare.
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    impl_->fd_limit = int64_t(rl.rlim_cur);
  }
  base::g_fd_limit.store(impl_->fd_limit);
  if (cfg.server.memory_limit > 0) {
    base::g_memory_limit_bytes.store(cfg.server.memory_limit);
  }
}

Server::~Server() {
  Stop();
  for (auto& w : impl_->workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  if (impl_->statm_fd >= 0) ::close(impl_->statm_fd);
}

base::Status Server::Bind() { return impl_->Bind(); }

std::unique_ptr<Live> Server::Impl::MakeLive(const ServerParams& cfg) const {
  auto seconds = [](double s) {
    return duration_cast<base::Duration>(std::chrono::duration<double>(s));
  };
  auto live = std::make_unique<Live>();
  auto& lim = live->limits;
  lim.session_timeout = seconds(cfg.smtp.session_timeout);
  lim.idle_timeout = seconds(cfg.smtp.idle_timeout);
  lim.proxy_timeout = seconds(cfg.server.proxy_timeout);
  lim.max_connections = cfg.server.max_connections;
  lim.max_connections_per_ip = cfg.server.max_connections_per_ip;
  lim.read_size = kReadBuffer;
  live->session = cfg.session;
  live->tarpit = cfg.tarpit;
  live->log_sessions = cfg.log_sessions;
  return live;
}

void Server::Reload(const ServerParams& params) {
  const Live* live;
  {
    std::lock_guard lock(impl_->live_mu);
    impl_->live.push_back(impl_->MakeLive(params));
    live = impl_->live.back().get();
  }
  impl_->current = live;
  // Each worker's Env is read only by its own thread: switch it there.
  for (auto& w : impl_->workers) {
    Worker* wp = w.get();
    if (impl_->executor == ExecutorKind::kUring) {
      wp->reload_tarpit.store(&live->tarpit, std::memory_order_relaxed);
      wp->reload_smtp.store(&live->session, std::memory_order_relaxed);
      wp->reload_limits.store(&live->limits, std::memory_order_release);
      Impl::WakeUring(*wp);
      continue;
    }
    asio::post(wp->io, [wp, live] {
      wp->env.limits = &live->limits;
      wp->env.smtp = &live->session;
      wp->env.tarpit = &live->tarpit;
    });
  }
}

base::Status Server::Impl::Bind() {
  if (!executor_error.empty()) return base::Status::Error(executor_error);
  base::LogLine(base::LogLevel::kInfo, "executor")
      .Kv("executor", executor == ExecutorKind::kUring ? "io_uring" : "asio")
      .Kv("reason", executor_reason);
  for (const auto& listen : p.server.listen) {
    // config::Validate has checked the text; a caller that skipped it still
    // gets an error naming the setting, never an exception.
    auto parsed = base::Endpoint::Parse(listen);
    if (!parsed.ok()) {
      return base::Status::Error("server.listen: " + parsed.error());
    }
    asio::error_code ec;
    auto addr = asio::ip::make_address(parsed->address.ToString(), ec);
    if (ec) {
      return base::Status::Error("server.listen: \"" + listen +
                                 "\": " + ec.message());
    }
    tcp::endpoint ep(addr, parsed->port);
    // SO_REUSEPORT would let us share a port silently with another process
    // of the same user that also sets it (smtp-sink does): probe first with
    // a plain socket so that "address in use" is reported.
    if (ep.port() != 0) {
      tcp::acceptor probe(workers[0]->io);
      probe.open(ep.protocol(), ec);
      if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec && ep.address().is_v6()) {
        probe.set_option(asio::ip::v6_only(true), ec);
      }
      if (!ec) probe.bind(ep, ec);
      if (ec == asio::error::address_in_use) {
        return base::Status::Error(
            "cannot listen on " + listen + ": " + ec.message() +
            "; another mail server (postfix, exim) may be running: stop it, "
            "or use another port, e.g. --listen 127.0.0.1:" +
            std::to_string(ep.port() == 2525 ? 2526 : 2525));
      }
      ec.clear();
    }
    // The first worker's socket fixes the port (port 0 picks one); the
    // others join it with SO_REUSEPORT, and the kernel spreads connections.
    for (auto& w : workers) {
      auto acc = std::make_unique<tcp::acceptor>(w->io);
      acc->open(ep.protocol(), ec);
      if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) {
        int one = 1;
        if (setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one,
                       sizeof one) != 0) {
          ec = asio::error_code(errno, asio::system_category());
        }
      }
      if (!ec && ep.address().is_v6()) {
        acc->set_option(asio::ip::v6_only(true), ec);
      }
      // Accepted sockets inherit TCP_NODELAY from the listener (Linux):
      // one setsockopt here instead of one per connection.
      if (!ec) acc->set_option(tcp::no_delay(true), ec);
      if (!ec) acc->bind(ep, ec);
      if (!ec) acc->listen(p.server.backlog, ec);
      if (ec) {
        std::string why = ec.message();
        std::string fix;
        if (ec == asio::error::access_denied) {
          fix =
              "; ports below 1024 need root (start as root with --user "
              "to drop privileges) or CAP_NET_BIND_SERVICE, or listen on "
              "a port above 1024, e.g. --listen 127.0.0.1:2525";
        } else if (ec == asio::error::address_in_use) {
          fix =
              "; another mail server (postfix, exim) may be running: stop "
              "it, or use another port, e.g. --listen 127.0.0.1:2525";
        } else if (ec == std::errc::address_not_available) {
          fix = "; that address is not configured on this host";
        }
        return base::Status::Error("cannot listen on " + listen + ": " + why +
                                   fix);
      }
      ep = acc->local_endpoint();
      acc->non_blocking(true);
      w->acceptors.push_back(std::move(acc));
    }
  }
  return {};
}

std::vector<std::string> Server::LocalAddresses() const {
  std::vector<std::string> out;
  if (impl_->workers.empty()) return out;
  for (auto& acc : impl_->workers[0]->acceptors) {
    out.push_back(EndpointText(acc->local_endpoint()));
  }
  return out;
}

void Server::SetSink(SessionSink* sink) { impl_->p.sink = sink; }

bool Server::SeedHistory(const base::IpAddress& ip, const peer::History& h) {
  return impl_->host.cache.Seed(ip, h);
}

int64_t Server::open_connections() const { return impl_->gauges.open.load(); }

std::string Server::executor() const {
  return impl_->executor == ExecutorKind::kUring ? "io_uring" : "asio";
}
std::string Server::executor_reason() const { return impl_->executor_reason; }

void Server::Run() {
  for (auto& w : impl_->workers) {
    Worker* wp = w.get();
    if (impl_->executor == ExecutorKind::kUring) {
      Impl* impl = impl_.get();
      wp->thread = std::thread([impl, wp] {
        base::SetThreadKind(base::ThreadKind::kSmtpWorker);
        impl->RunUring(*wp);
      });
      continue;
    }
    impl_->StartWorker(*wp);
    wp->thread = std::thread([wp] {
      base::SetThreadKind(base::ThreadKind::kSmtpWorker);
      wp->io.run();
    });
  }
  for (auto& w : impl_->workers) w->thread.join();
}

void Server::Stop() {
  if (impl_->stopping.exchange(true)) return;
  for (auto& w : impl_->workers) {
    Worker* wp = w.get();
    if (impl_->executor == ExecutorKind::kUring) {
      Impl::WakeUring(*wp);
      continue;
    }
    asio::post(wp->io, [this, wp] { impl_->StopWorker(*wp); });
  }
}

void Server::Impl::StartWorker(Worker& w) {
  w.head.prev = w.head.next = &w.head;
  for (auto& acc : w.acceptors) {
    asio::co_spawn(w.io, AcceptLoop(w, *acc), asio::detached);
  }
  asio::co_spawn(w.io, Sweep(w), asio::detached);
}

void Server::Impl::StopWorker(Worker& w) {
  w.stopping = true;
  for (auto& acc : w.acceptors) {
    asio::error_code ec;
    acc->close(ec);
  }
  w.sweeper.cancel();
  for (Conn* c = w.head.next; c != &w.head; c = c->next) {
    AbortSession(c, CloseReason::kShutdown);
  }
}

int64_t Server::Impl::ReadRss() const {
  if (p.rss) return p.rss();
  // One system call, once per sweep of worker 0 (at most 50 a second):
  // a pread at 0 makes the kernel generate the figures again.
  if (statm_fd < 0) return -1;
  char buf[128];
  ssize_t n = ::pread(statm_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return -1;
  buf[n] = 0;
  long long pages_total = 0, pages_resident = 0;
  if (std::sscanf(buf, "%lld %lld", &pages_total, &pages_resident) != 2) {
    return -1;
  }
  return int64_t(pages_resident) * int64_t(sysconf(_SC_PAGESIZE));
}

// Worker 0's sweep: one reading per sweep period. Above the limit the
// allocator first gives back what it keeps free (malloc_trim); if that is
// not enough, every worker cuts a round of held sessions and accepting
// pauses until a reading below 90% of the limit.
void Server::Impl::CheckMemory() {
  const int64_t limit = p.server.memory_limit;
  if (limit <= 0) return;
  int64_t rss = ReadRss();
  if (rss > limit) {
    malloc_trim(0);
    rss = ReadRss();
  }
  base::g_memory_rss_bytes.store(rss, std::memory_order_relaxed);
  if (rss > limit) {
    memory_epoch.fetch_add(1, std::memory_order_relaxed);
    if (!memory_shed.exchange(true)) {
      Count(Counter::kMemoryLimitReached);
      base::LogLine(base::LogLevel::kWarning, "memory_limit_reached")
          .Kv("rss", rss)
          .Kv("limit", limit)
          .Kv("open", gauges.open.load())
          .Kv("held", gauges.held.load());
    }
  } else if (rss >= 0 && rss < limit - limit / 10 &&
             memory_shed.exchange(false)) {
    base::LogLine(base::LogLevel::kInfo, "memory_limit_cleared")
        .Kv("rss", rss)
        .Kv("limit", limit)
        .Kv("open", gauges.open.load());
  }
}

int64_t Server::Impl::ShedQuota() const {
  int64_t held = gauges.held.load(std::memory_order_relaxed);
  return std::max<int64_t>(1, held / (4 * int64_t(workers.size())));
}

void Server::Impl::NoteShed(const Worker& w, int64_t cut) {
  if (cut == 0) return;
  Count(Counter::kMemoryShedSessions, uint64_t(cut));
  base::LogLine(base::LogLevel::kWarning, "memory_shed")
      .Kv("worker", w.index)
      .Kv("sessions", cut);
}

asio::awaitable<void> Server::Impl::Sweep(Worker& w) {
  while (!w.stopping) {
    w.sweeper.expires_after(sweep_period);
    co_await w.sweeper.async_wait(kNoThrow);
    if (w.stopping) break;
    auto now = p.clock->Now();
    for (Conn* c = w.head.next; c != &w.head; c = c->next) {
      if (c->aborted) continue;
      if (auto why = SessionExpired(c, now)) AbortSession(c, *why);
    }
    if (w.index == 0) CheckMemory();
    bool shed = memory_shed.load(std::memory_order_relaxed);
    if (shed && !w.shed_seen) {
      // The accept loops wait in accept(2): wake them to pause.
      for (auto& acc : w.acceptors) {
        asio::error_code ec;
        acc->cancel(ec);
      }
    }
    w.shed_seen = shed;
    uint64_t epoch = memory_epoch.load(std::memory_order_relaxed);
    if (epoch != w.memory_epoch) {
      w.memory_epoch = epoch;
      // The list is in accept order: the oldest held sessions go first.
      int64_t quota = ShedQuota(), cut = 0;
      for (Conn* c = w.head.next; c != &w.head && cut < quota; c = c->next) {
        if (c->aborted || !SessionHeld(c)) continue;
        AbortSession(c, CloseReason::kMemoryLimit);
        ++cut;
      }
      NoteShed(w, cut);
    }
  }
}

asio::awaitable<void> Server::Impl::AcceptLoop(Worker& w, tcp::acceptor& acc) {
  asio::steady_timer pause(w.io);
  const int64_t reserve = p.server.fd_reserve + 16;
  AcceptPause paused;
  while (!w.stopping) {
    // The API's sockets count too (it may use the reserve itself).
    bool no_fds = gauges.open.load(std::memory_order_relaxed) +
                      base::g_api_connections.load(std::memory_order_relaxed) +
                      reserve >=
                  fd_limit;
    if (no_fds || memory_shed.load(std::memory_order_relaxed)) {
      // Out of descriptors or over the memory limit: wait for sessions to
      // end instead of spinning.
      paused.Set(true);
      if (no_fds) Count(Counter::kAcceptPauses);
      pause.expires_after(milliseconds(100));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    paused.Set(false);
    tcp::endpoint peer;  // filled by accept(2): no getpeername per session
    auto [ec, sock] =
        co_await acc.async_accept(w.io.get_executor(), peer, kNoThrow);
    if (w.stopping) break;
    if (ec == asio::error::operation_aborted) continue;  // the sweep: shed
    if (ec) {
      Count(Counter::kAcceptErrors);
      bool no_fds = ec.value() == EMFILE || ec.value() == ENFILE ||
                    ec == asio::error::no_buffer_space ||
                    ec == asio::error::no_memory;
      if (no_fds) Count(Counter::kAcceptPauses);
      paused.Set(no_fds);
      base::LogLine(base::LogLevel::kWarning, "accept_error")
          .Kv("error", ec.message());
      // A failed accept backs off and carries on; it never ends the server.
      pause.expires_after(milliseconds(no_fds ? 100 : 10));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    Count(Counter::kConnectionsAccepted);
    StartSession(w, std::move(sock), peer);
  }
}

}  // namespace net
