#include "net/sender_driver.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "sender/plan.h"

namespace net {

namespace {

using asio::awaitable;
using asio::ip::tcp;
using sender::ClientSession;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kReadBuffer = 2048;  // replies are short; lines may span

std::atomic<bool> g_stop{false};

asio::ip::address ToAsio(const base::IpAddress& ip) {
  if (ip.is_v4()) return asio::ip::address_v4(ip.v4());
  asio::ip::address_v6::bytes_type b;
  std::copy(ip.bytes().begin(), ip.bytes().end(), b.begin());
  return asio::ip::address_v6(b);
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// What every thread shares (read-only after start, or atomic).
struct Shared {
  const SenderOptions* opts;
  sender::LoadPlan* plan;
  sender::Tracer* tracer;
  tcp::endpoint target;
  base::IpAddress target_ip;
  sender::AddressPool sources, proxy_clients;
  std::atomic<uint64_t> next_session{0};
  std::string tls_name;  // SNI and the name verified ("" none)
  bool tls_verify = false;
};

struct Worker;

// One concurrent session slot: engine, socket, timers, read buffer.
class Slot {
 public:
  Slot(Worker* w, int index);
  awaitable<void> RunClosedLoop();
  awaitable<void> RunOnce();  // open loop: one connection, then back to pool
  awaitable<void> Watchdog();
  // Ends an idle --hold early (the run is stopping).
  void CancelHold() { hold_timer_.cancel(); }
  // Cuts the running session short (the run was stopped and the grace
  // period is over): it ends as a timeout.
  void CutShort() {
    if (!active_ || timed_out_) return;
    timed_out_ = true;
    asio::error_code ignored;
    socket_.close(ignored);
    hold_timer_.cancel();
  }
  void Retire() {
    retired_ = true;
    watchdog_.cancel();
  }

 private:
  awaitable<void> RunConnection();
  awaitable<asio::error_code> Write();
  uint32_t Retransmissions();

  Worker* w_;
  ClientSession engine_;
  tcp::socket socket_;
  std::optional<asio::ssl::stream<tcp::socket&>> tls_;
  asio::steady_timer watchdog_, hold_timer_;
  bool active_ = false, timed_out_ = false, retired_ = false;
  std::array<char, kReadBuffer> buf_;
  std::string preface_;
};

struct Worker {
  Worker(Shared* s, int index, const sender::MessageGenerator& proto)
      : shared(s),
        index(index),
        gen(proto),
        ssl(asio::ssl::context::tls_client) {
    const SenderOptions& o = *s->opts;
    if (!o.tls_verify && o.tls_ca_file.empty()) {
      ssl.set_verify_mode(asio::ssl::verify_none);  // any certificate will do
      return;
    }
    asio::error_code ec;
    if (o.tls_ca_file.empty()) {
      ssl.set_default_verify_paths(ec);
    } else {
      ssl.load_verify_file(o.tls_ca_file, ec);
    }
    ssl.set_verify_mode(asio::ssl::verify_peer);
  }
  Shared* shared;
  int index;
  asio::io_context io{1};
  sender::MessageGenerator gen;
  sender::Stats stats;
  sender::Progress* progress = nullptr;
  asio::ssl::context ssl;
  std::vector<std::unique_ptr<Slot>> slots;
  std::vector<Slot*> idle;  // open loop
  int busy = 0;
  uint64_t queued = 0;  // open loop: arrivals waiting for a free slot
  bool arrivals_over = false;

  awaitable<void> Arrivals(double interval_s, int cap);
};

Slot::Slot(Worker* w, int index)
    : w_(w),
      engine_(&w->shared->opts->setup, &w->gen, &w->stats, w->progress,
              w->shared->plan, w->shared->tracer),
      socket_(w->io),
      watchdog_(w->io),
      hold_timer_(w->io) {
  preface_.reserve(128);
}

awaitable<void> Slot::Watchdog() {
  while (!retired_) {
    auto now = Clock::now();
    if (active_ && !timed_out_ && engine_.deadline() <= now) {
      timed_out_ = true;
      asio::error_code ignored;
      socket_.close(ignored);
      hold_timer_.cancel();
    }
    watchdog_.expires_at(active_ && !timed_out_ ? engine_.deadline()
                                                : Clock::time_point::max());
    co_await watchdog_.async_wait(kTuple);
  }
}

awaitable<void> Slot::RunClosedLoop() {
  while (w_->shared->plan->Claim()) co_await RunConnection();
  Retire();
}

awaitable<void> Slot::RunOnce() {
  co_await RunConnection();
  // Arrivals that found every slot busy start here, in order.
  while (w_->queued > 0 && w_->shared->plan->Claim()) {
    w_->queued--;
    co_await RunConnection();
  }
  w_->busy--;
  if (w_->arrivals_over)
    Retire();
  else
    w_->idle.push_back(this);
}

uint32_t Slot::Retransmissions() {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (!socket_.is_open() || getsockopt(socket_.native_handle(), IPPROTO_TCP,
                                       TCP_INFO, &info, &len) != 0)
    return 0;
  return info.tcpi_total_retrans;
}

awaitable<asio::error_code> Slot::Write() {
  std::string_view pieces[ClientSession::kMaxPieces];
  int n = engine_.Output(pieces);
  std::array<asio::const_buffer, ClientSession::kMaxPieces> bufs;
  for (int i = 0; i < n; ++i) bufs[i] = asio::buffer(pieces[i]);
  std::span<const asio::const_buffer> seq(bufs.data(), size_t(n));
  if (tls_) {
    auto [ec, written] = co_await asio::async_write(*tls_, seq, kTuple);
    co_return ec;
  }
  // Try one non-blocking sendmsg first: a reply-sized or message-sized write
  // almost always fits the socket buffer, and completing it here saves the
  // posted completion and the extra epoll_wait an async write costs.
  asio::error_code ec;
  size_t done = socket_.write_some(seq, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ec = {};
    done = 0;
  }
  if (ec) co_return ec;
  int first = 0;
  while (first < n && done >= bufs[first].size()) done -= bufs[first++].size();
  if (first == n) co_return ec;
  bufs[first] += done;  // drop what was sent of a partly written piece
  std::span<const asio::const_buffer> rest(bufs.data() + first,
                                           size_t(n - first));
  auto [aec, written] = co_await asio::async_write(socket_, rest, kTuple);
  co_return aec;
}

awaitable<void> Slot::RunConnection() {
  Shared& sh = *w_->shared;
  uint64_t k = sh.next_session.fetch_add(1, std::memory_order_relaxed);
  uint64_t id = k + 1;
  engine_.Begin(id, sh.opts->seed * 0x9E3779B97F4A7C15ull + id, Clock::now());
  active_ = true;
  timed_out_ = false;
  watchdog_.cancel();  // re-arm on the new deadline

  asio::error_code ec;
  socket_.open(sh.target.protocol(), ec);
  if (!ec && !sh.sources.empty()) {
    // Let connect() pick the port per destination, so thousands of source
    // addresses do not exhaust the ephemeral range at bind() time.
    int one = 1;
    setsockopt(socket_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT,
               &one, sizeof one);
    socket_.bind(tcp::endpoint(ToAsio(sh.sources.At(k)), 0), ec);
  }
  if (!ec) std::tie(ec) = co_await socket_.async_connect(sh.target, kTuple);
  if (ec) {
    if (timed_out_)
      engine_.OnTimeout(Clock::now());
    else
      engine_.OnConnectFailed(Clock::now());
  } else {
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);  // Write() tries a direct sendmsg
    preface_.clear();
    if (sh.opts->proxy_version)
      sender::AppendProxyHeader(
          &preface_, sh.opts->proxy_version, sh.proxy_clients.At(k),
          uint16_t(1024 + k % 64000), sh.target_ip, sh.target.port());
    engine_.OnConnected(Clock::now(), preface_);
  }
  bool running = true;
  while (running) {
    switch (engine_.want()) {
      case ClientSession::Want::kWrite: {
        ec = co_await Write();
        if (!ec)
          engine_.OnWritten(Clock::now());
        else if (timed_out_)
          engine_.OnTimeout(Clock::now());
        else
          engine_.OnPeerClosed(Clock::now());
        break;
      }
      case ClientSession::Want::kRead: {
        auto buf = asio::buffer(buf_);
        auto [rec, n] = tls_ ? co_await tls_->async_read_some(buf, kTuple)
                             : co_await socket_.async_read_some(buf, kTuple);
        if (!rec)
          engine_.OnBytes(std::string_view(buf_.data(), n), Clock::now());
        else if (timed_out_)
          engine_.OnTimeout(Clock::now());
        else
          engine_.OnPeerClosed(Clock::now());
        break;
      }
      case ClientSession::Want::kTls: {
        tls_.emplace(socket_, w_->ssl);
        const std::string& name = w_->shared->tls_name;
        if (!name.empty()) {
          SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());
          if (w_->shared->tls_verify) {
            tls_->set_verify_callback(asio::ssl::host_name_verification(name));
          }
        }
        auto [hec] = co_await tls_->async_handshake(
            asio::ssl::stream_base::client, kTuple);
        if (timed_out_)
          engine_.OnTimeout(Clock::now());
        else
          engine_.OnTlsDone(!hec, Clock::now());
        break;
      }
      case ClientSession::Want::kHold: {
        hold_timer_.expires_after(engine_.hold());
        co_await hold_timer_.async_wait(kTuple);
        if (timed_out_)
          engine_.OnTimeout(Clock::now());
        else
          engine_.OnHoldDone(Clock::now());
        break;
      }
      case ClientSession::Want::kClose:
        running = false;
        break;
    }
  }
  uint32_t retrans = Retransmissions();
  tls_.reset();
  socket_.close(ec);
  active_ = false;
  engine_.Finish(Clock::now(), retrans);
}

// Open loop: starts one session every interval (absolute schedule, so a
// slow server does not slow the arrivals), up to `cap` at once.
awaitable<void> Worker::Arrivals(double interval_s, int cap) {
  asio::steady_timer timer(io);
  auto start = Clock::now();
  auto step = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(interval_s));
  for (uint64_t n = 0;; ++n) {
    timer.expires_at(start + step * int64_t(n));
    co_await timer.async_wait(kTuple);
    if (shared->plan->exhausted()) break;
    if (idle.empty() && int(slots.size()) >= cap) {
      // Open loop: the arrival waits for a slot (never skipped, so the
      // offered load stays the one asked for; the queue shows the lag).
      stats.queued_arrivals++;
      stats.max_queue_depth = std::max(stats.max_queue_depth, ++queued);
      continue;
    }
    if (!shared->plan->Claim()) break;
    Slot* slot;
    if (!idle.empty()) {
      slot = idle.back();
      idle.pop_back();
    } else {
      slots.push_back(std::make_unique<Slot>(this, int(slots.size())));
      slot = slots.back().get();
      asio::co_spawn(io, slot->Watchdog(), asio::detached);
    }
    busy++;
    asio::co_spawn(io, slot->RunOnce(), asio::detached);
  }
  arrivals_over = true;
  for (Slot* s : idle) s->Retire();
  idle.clear();
}

}  // namespace

void RequestSenderStop() { g_stop.store(true); }

uint64_t RaiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

base::Result<base::IpAddress> ResolveHost(const std::string& host) {
  auto literal = base::IpAddress::Parse(host);
  if (literal.ok()) return literal;
  asio::io_context io;
  tcp::resolver resolver(io);
  asio::error_code ec;
  auto results = resolver.resolve(host, "", ec);
  if (ec || results.empty())
    return base::Status::Error("cannot resolve '" + host +
                               "': " + (ec ? ec.message() : "no address"));
  return base::IpAddress::Parse(
      results.begin()->endpoint().address().to_string());
}

base::Result<SenderResult> RunSender(const SenderOptions& opts,
                                     sender::Tracer* tracer,
                                     const ProgressFn& progress_fn) {
  if (opts.senders < 1) return base::Status::Error("senders must be >= 1");
  if (opts.threads < 1) return base::Status::Error("threads must be >= 1");
  if (opts.total_messages <= 0 && opts.duration <= 0)
    return base::Status::Error("give a message count (-n) or a duration (-t)");
  auto ip = ResolveHost(opts.host);
  if (!ip.ok()) return ip.status();

  sender::LoadPlan plan(opts.total_messages);
  Shared shared;
  shared.opts = &opts;
  shared.plan = &plan;
  shared.tracer = tracer;
  shared.target_ip = *ip;
  shared.target = tcp::endpoint(ToAsio(*ip), opts.port);
  shared.tls_verify = opts.tls_verify || !opts.tls_ca_file.empty();
  shared.tls_name = opts.tls_name;
  if (shared.tls_name.empty() && !base::IpAddress::Parse(opts.host).ok()) {
    shared.tls_name = opts.host;  // SNI is for names, never addresses
  }
  if (!opts.tls_ca_file.empty() && access(opts.tls_ca_file.c_str(), R_OK) != 0)
    return base::Status::Error("cannot read --tls-ca " + opts.tls_ca_file);
  if (!opts.source_range.empty()) {
    auto c = base::Cidr::Parse(opts.source_range);
    if (!c.ok()) return c.status();
    if (c->network().is_v4() != ip->is_v4())
      return base::Status::Error("--source-range family differs from target");
    shared.sources = sender::AddressPool(*c);
  }
  if (opts.proxy_version) {
    auto c = base::Cidr::Parse(opts.proxy_clients);
    if (!c.ok()) return c.status();
    shared.proxy_clients = sender::AddressPool(*c);
  }
  uint64_t seed =
      opts.seed ? opts.seed : uint64_t(Clock::now().time_since_epoch().count());
  auto proto = sender::MessageGenerator::Create(opts.shape,
                                                &base::SystemClock::Get(), 0);
  if (!proto.ok()) return proto.status();

  sender::Progress progress;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < opts.threads; ++t) {
    auto gen = sender::MessageGenerator::Create(
        opts.shape, &base::SystemClock::Get(), seed ^ (uint64_t(t) << 56));
    workers.push_back(std::make_unique<Worker>(&shared, t, *gen));
    workers.back()->progress = &progress;
  }
  g_stop.store(false);
  double cpu0 = CpuSeconds();
  auto t0 = Clock::now();
  for (int t = 0; t < opts.threads; ++t) {
    Worker& w = *workers[t];
    int share = opts.senders / opts.threads + (t < opts.senders % opts.threads);
    if (opts.rate > 0) {
      double per_thread = opts.rate / opts.threads /
                          std::max(1, opts.setup.messages_per_connection);
      asio::co_spawn(w.io, w.Arrivals(1.0 / per_thread, std::max(1, share)),
                     asio::detached);
      continue;
    }
    for (int i = 0; i < share; ++i) {
      w.slots.push_back(std::make_unique<Slot>(&w, i));
      asio::co_spawn(w.io, w.slots.back()->Watchdog(), asio::detached);
      asio::co_spawn(w.io, w.slots.back()->RunClosedLoop(), asio::detached);
    }
  }
  std::atomic<int> running{opts.threads};
  // Each thread notes when its last session ended: the run's elapsed time
  // is the clock's, not the waiting thread's 20 ms poll.
  std::vector<Clock::time_point> ended(workers.size(), t0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < workers.size(); ++i)
    threads.emplace_back([&w = workers[i], &end = ended[i], &running] {
      w->io.run();
      end = Clock::now();
      running--;
    });
  // The waiting thread: progress, -t and SIGINT. Not a hot path. After a
  // stop, sessions still running get a grace period to finish their
  // message, then are cut short (a slow or tarpitting server would
  // otherwise hold the run for up to --phase-timeout per reply).
  constexpr auto kStopGrace = std::chrono::seconds(2);
  auto last_tick = Clock::now();
  Clock::time_point stopped_at{};
  bool cut = false;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!plan.stopped() &&
        (g_stop.load() || (opts.duration > 0 && elapsed >= opts.duration))) {
      plan.Stop();
      if (g_stop.load()) stopped_at = Clock::now();  // not for -t
      // Held sessions would otherwise idle to the end of --hold.
      for (auto& w : workers)
        asio::post(w->io, [wp = w.get()] {
          for (auto& s : wp->slots) s->CancelHold();
        });
    }
    if (plan.stopped() && !cut && stopped_at != Clock::time_point{} &&
        Clock::now() - stopped_at >= kStopGrace) {
      cut = true;
      for (auto& w : workers)
        asio::post(w->io, [wp = w.get()] {
          for (auto& s : wp->slots) s->CutShort();
        });
    }
    if (progress_fn &&
        Clock::now() - last_tick >= std::chrono::milliseconds(250)) {
      last_tick = Clock::now();
      progress_fn(progress, elapsed);
    }
  }
  for (auto& t : threads) t.join();
  SenderResult result;
  auto last = *std::max_element(ended.begin(), ended.end());
  result.elapsed_s = std::chrono::duration<double>(last - t0).count();
  result.cpu_s = CpuSeconds() - cpu0;
  for (auto& w : workers) result.stats.Merge(w->stats);
  return result;
}

}  // namespace net
