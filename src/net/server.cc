#include "net/server.h"

#include <netinet/tcp.h>
#include <sys/resource.h>

#include <array>
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>
#include <mutex>
#include <unordered_map>

#include "base/log.h"
#include "base/metrics.h"
#include "net/peer_memory.h"
#include "net/proxy.h"
#include "tarpit/stutter.h"

namespace net {
namespace {

using asio::ip::tcp;
using base::Count;
using base::Counter;
using smtp::CloseReason;
using smtp::Reply;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kReadBuffer = 64 * 1024;

// A connection as the sweeper sees it: deadlines and the socket to cancel.
struct Conn {
  Conn* prev = nullptr;
  Conn* next = nullptr;
  tcp::socket* socket = nullptr;
  base::SteadyTime idle_deadline;
  base::SteadyTime session_deadline;
  asio::steady_timer* timer = nullptr;  // the tarpit's, when it has one
  bool waiting_for_client = false;      // idle deadline applies
  bool aborted = false;
  Reply abort_reply = Reply::kIdleTimeout;
  CloseReason abort_reason = CloseReason::kIdleTimeout;
};

// Open connections per client IP, shared by all workers (touched once at
// connect and once at close, never per command).
class IpCounts {
 public:
  int Add(const base::IpAddress& ip) {
    auto& s = shards_[std::hash<base::IpAddress>()(ip) % kShards];
    std::lock_guard lock(s.mu);
    return ++s.map[ip];
  }
  void Remove(const base::IpAddress& ip) {
    auto& s = shards_[std::hash<base::IpAddress>()(ip) % kShards];
    std::lock_guard lock(s.mu);
    auto it = s.map.find(ip);
    if (it != s.map.end() && --it->second <= 0) s.map.erase(it);
  }

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<base::IpAddress, int> map;
  };
  std::array<Shard, kShards> shards_;
};

std::string EndpointText(const tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" +
         std::to_string(ep.port());
}

base::IpAddress ToIp(const asio::ip::address& a) {
  if (a.is_v4()) return base::IpAddress::FromV4(a.to_v4().to_uint());
  auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) {
    return base::IpAddress::FromV4(
        asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_uint());
  }
  return base::IpAddress::FromV6(v6.to_bytes());
}

}  // namespace

struct Worker {
  explicit Worker(int index) : index(index), io(1), sweeper(io) {}
  int index;
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::unique_ptr<char[]> read_buf{new char[kReadBuffer]};
  std::string out;  // replies of the session being served right now
  Conn head;        // sentinel of the list of open connections
  tarpit::SplitMixRandom rng{0x5eed5eedull + uint64_t(index)};
  asio::steady_timer sweeper;
  bool stopping = false;
  uint64_t next_session = 0;
  std::thread thread;
};

struct Server::Impl {
  ServerParams p;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<base::Cidr> trusted;
  IpCounts ip_counts;
  PeerMemory peers;
  std::atomic<int64_t> held{0};        // sessions whose plan holds them
  std::atomic<int64_t> stuttering{0};  // sessions whose plan stutters
  std::atomic<int64_t> open{0};
  std::atomic<bool> stopping{false};
  int64_t fd_limit = 1024;
  std::chrono::milliseconds sweep_period{1000};

  base::Status Bind();
  void StartWorker(Worker& w);
  asio::awaitable<void> AcceptLoop(Worker& w, tcp::acceptor& acc);
  asio::awaitable<void> Session(Worker& w, tcp::socket sock);
  asio::awaitable<void> Sweep(Worker& w);
  void StopWorker(Worker& w);
  bool Trusted(const base::IpAddress& ip) const {
    for (const auto& n : trusted) {
      if (n.Contains(ip)) return true;
    }
    return false;
  }
};

Server::Server(ServerParams params) : impl_(std::make_unique<Impl>()) {
  impl_->p = std::move(params);
  for (const auto& n : impl_->p.config.server.proxy_trusted) {
    auto c = base::Cidr::Parse(n);
    if (c.ok()) impl_->trusted.push_back(*c);
  }
  int threads = impl_->p.config.server.threads;
  if (threads <= 0)
    threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i) {
    impl_->workers.push_back(std::make_unique<Worker>(i));
  }
  double shortest = std::min(impl_->p.config.smtp.idle_timeout,
                             impl_->p.config.smtp.session_timeout);
  shortest = std::min(shortest, impl_->p.config.server.proxy_timeout);
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
}

Server::~Server() {
  Stop();
  for (auto& w : impl_->workers) {
    if (w->thread.joinable()) w->thread.join();
  }
}

base::Status Server::Bind() { return impl_->Bind(); }

base::Status Server::Impl::Bind() {
  for (const auto& listen : p.config.server.listen) {
    auto colon = listen.rfind(':');
    auto ip = base::IpAddress::Parse(listen.substr(0, colon));
    if (!ip.ok()) return ip.status();
    asio::error_code ec;
    auto addr = asio::ip::make_address(ip->ToString(), ec);
    unsigned port = unsigned(std::stoul(listen.substr(colon + 1)));
    tcp::endpoint ep(addr, uint16_t(port));
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
      if (!ec) acc->bind(ep, ec);
      if (!ec) acc->listen(p.config.server.backlog, ec);
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

int64_t Server::open_connections() const { return impl_->open.load(); }

void Server::Run() {
  for (auto& w : impl_->workers) {
    Worker* wp = w.get();
    impl_->StartWorker(*wp);
    wp->thread = std::thread([wp] { wp->io.run(); });
  }
  for (auto& w : impl_->workers) w->thread.join();
}

void Server::Stop() {
  if (impl_->stopping.exchange(true)) return;
  for (auto& w : impl_->workers) {
    Worker* wp = w.get();
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
    c->aborted = true;
    c->abort_reply = Reply::kShutdown;
    c->abort_reason = CloseReason::kShutdown;
    asio::error_code ec;
    c->socket->cancel(ec);
    if (c->timer) c->timer->cancel();
  }
}

asio::awaitable<void> Server::Impl::Sweep(Worker& w) {
  while (!w.stopping) {
    w.sweeper.expires_after(sweep_period);
    auto [ec] = co_await w.sweeper.async_wait(kNoThrow);
    if (w.stopping) break;
    auto now = p.clock->Now();
    for (Conn* c = w.head.next; c != &w.head; c = c->next) {
      if (c->aborted) continue;
      if (now >= c->session_deadline) {
        c->abort_reply = Reply::kSessionTimeout;
        c->abort_reason = CloseReason::kSessionTimeout;
      } else if (c->waiting_for_client && now >= c->idle_deadline) {
        c->abort_reply = Reply::kIdleTimeout;
        c->abort_reason = CloseReason::kIdleTimeout;
      } else {
        continue;
      }
      c->aborted = true;
      asio::error_code ignored;
      c->socket->cancel(ignored);
      if (c->timer) c->timer->cancel();
    }
  }
}

asio::awaitable<void> Server::Impl::AcceptLoop(Worker& w, tcp::acceptor& acc) {
  asio::steady_timer pause(w.io);
  const int64_t reserve = p.config.server.fd_reserve + 16;
  while (!w.stopping) {
    if (open.load(std::memory_order_relaxed) + reserve >= fd_limit) {
      // Out of descriptors: wait for sessions to end instead of spinning.
      Count(Counter::kAcceptPauses);
      pause.expires_after(milliseconds(100));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    auto [ec, sock] = co_await acc.async_accept(kNoThrow);
    if (w.stopping) break;
    if (ec) {
      Count(Counter::kAcceptErrors);
      bool no_fds = ec.value() == EMFILE || ec.value() == ENFILE ||
                    ec == asio::error::no_buffer_space ||
                    ec == asio::error::no_memory;
      if (no_fds) Count(Counter::kAcceptPauses);
      base::LogLine(base::LogLevel::kWarning, "accept_error")
          .Kv("error", ec.message());
      // A failed accept backs off and carries on; it never ends the server.
      pause.expires_after(milliseconds(no_fds ? 100 : 10));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    Count(Counter::kConnectionsAccepted);
    asio::co_spawn(w.io, Session(w, std::move(sock)), asio::detached);
  }
}

namespace {

// Writes data, without copying when the socket takes it at once (the usual
// case); otherwise copies the rest and waits. Returns false on error.
asio::awaitable<bool> WriteAll(tcp::socket& sock, std::string_view data) {
  asio::error_code ec;
  size_t n = sock.write_some(asio::buffer(data.data(), data.size()), ec);
  if (ec && ec != asio::error::would_block) co_return false;
  if (n == data.size()) co_return true;
  std::string rest(data.substr(ec ? 0 : n));
  auto [wec, m] =
      co_await asio::async_write(sock, asio::buffer(rest), kNoThrow);
  co_return !wec;
}

template <typename Stream>
asio::awaitable<bool> WriteAllTls(Stream& s, std::string_view data) {
  std::string copy(data);
  auto [ec, n] = co_await asio::async_write(s, asio::buffer(copy), kNoThrow);
  co_return !ec;
}

}  // namespace

namespace {

tarpit::Stage StageOf(Reply r) {
  switch (r) {
    case Reply::kGreeting:
    case Reply::kGreetingRefused:
      return tarpit::Stage::kGreeting;
    case Reply::kHelo:
    case Reply::kEhloFirst:
      return tarpit::Stage::kHelo;
    case Reply::kMailOk:
      return tarpit::Stage::kMail;
    case Reply::kRcptOk:
    case Reply::kTooManyRecipients:
      return tarpit::Stage::kRcpt;
    case Reply::kDataGo:
      return tarpit::Stage::kData;
    case Reply::kQueued:
    case Reply::kTempfail:
    case Reply::kRejected:
    case Reply::kTooBig:
    case Reply::kTextLineTooLong:
      return tarpit::Stage::kDataEnd;
    default:
      return tarpit::Stage::kOther;
  }
}

smtp::FinalReply ToFinalReply(tarpit::Verdict v, smtp::FinalReply dflt) {
  switch (v) {
    case tarpit::Verdict::kAccept:
      return smtp::FinalReply::kAccept;
    case tarpit::Verdict::kTempfail:
      return smtp::FinalReply::kTempfail;
    case tarpit::Verdict::kReject:
      return smtp::FinalReply::kReject;
    case tarpit::Verdict::kDefault:
      break;
  }
  return dflt;
}

// A session's tarpit: its plan, the slots it holds, its timer.
struct Tarpit {
  Tarpit(asio::io_context& io, std::atomic<int64_t>* held,
         std::atomic<int64_t>* stuttering)
      : timer(io), held_(held), stuttering_(stuttering) {}
  ~Tarpit() { Release(); }
  void Adopt(const tarpit::Plan& p) {
    Release();
    plan = p;
    counters.held = plan.held;
    counters.stuttering = plan.stutter;
    if (plan.held) held_->fetch_add(1, std::memory_order_relaxed);
    if (plan.stutter) stuttering_->fetch_add(1, std::memory_order_relaxed);
  }
  void Release() {
    if (counters.held) held_->fetch_sub(1, std::memory_order_relaxed);
    if (counters.stuttering) {
      stuttering_->fetch_sub(1, std::memory_order_relaxed);
    }
    counters.held = counters.stuttering = false;
  }
  tarpit::Plan plan;
  tarpit::SessionCounters counters;
  tarpit::PeerHistory history;
  asio::steady_timer timer;
  std::vector<smtp::ReplyMark> marks;
  bool window_set = false;

 private:
  std::atomic<int64_t>* held_;
  std::atomic<int64_t>* stuttering_;
};

// Waits d on the tarpit's timer; false if the session was aborted.
asio::awaitable<bool> TarpitWait(Tarpit& t, Conn& conn, base::Duration d,
                                 smtp::SessionRecord& rec) {
  if (d <= base::Duration::zero()) co_return !conn.aborted;
  t.timer.expires_after(d);
  co_await t.timer.async_wait(kNoThrow);
  double secs = std::chrono::duration<double>(d).count();
  rec.delay_seconds += secs;
  Count(Counter::kTarpitDelayMs, uint64_t(secs * 1000));
  co_return !conn.aborted;
}

}  // namespace

// Sends the replies in out one by one, each paced by the plan for its stage
// (delay, then stutter chunks). out and marks are copies: the worker's
// buffers are shared with other sessions while this one waits.
asio::awaitable<bool> PacedWrite(Tarpit& t, Conn& conn, tcp::socket& sock,
                                 std::string out,
                                 std::vector<smtp::ReplyMark> marks,
                                 const base::Clock& clock, tarpit::Random& rng,
                                 smtp::SessionRecord& rec,
                                 bool skip_first_delay) {
  size_t begin = 0;
  for (const auto& m : marks) {
    std::string_view reply(out.data() + begin, m.end - begin);
    begin = m.end;
    auto pacing = t.plan.Pace(StageOf(m.reply), reply.size(), clock.Now(), rng);
    if (skip_first_delay) {
      pacing.delay = base::Duration::zero();
      skip_first_delay = false;
    }
    if (pacing.chunk_bytes > 0) {
      ++rec.replies_stuttered;
      Count(Counter::kTarpitStuttered);
    }
    tarpit::StutterCursor cursor(reply, pacing);
    while (!cursor.Done()) {
      auto chunk = cursor.Next();
      if (!co_await TarpitWait(t, conn, chunk.wait, rec)) co_return false;
      if (!co_await WriteAll(sock, chunk.bytes)) co_return false;
    }
  }
  if (begin < out.size()) {
    co_return co_await WriteAll(sock, std::string_view(out).substr(begin));
  }
  co_return true;
}

asio::awaitable<void> Server::Impl::Session(Worker& w, tcp::socket sock) {
  const auto& cfg = p.config;
  const base::Clock& clock = *p.clock;
  open.fetch_add(1, std::memory_order_relaxed);
  base::g_open_connections.fetch_add(1, std::memory_order_relaxed);

  smtp::SessionRecord rec;
  rec.start_wall = clock.WallSeconds();
  const auto start = clock.Now();
  Conn conn;
  conn.socket = &sock;
  conn.session_deadline =
      start + duration_cast<base::Duration>(
                  std::chrono::duration<double>(cfg.smtp.session_timeout));
  auto idle = duration_cast<base::Duration>(
      std::chrono::duration<double>(cfg.smtp.idle_timeout));
  conn.idle_deadline =
      start + duration_cast<base::Duration>(
                  std::chrono::duration<double>(cfg.server.proxy_timeout));
  // Link into the worker's list for the sweeper.
  conn.prev = w.head.prev;
  conn.next = &w.head;
  w.head.prev->next = &conn;
  w.head.prev = &conn;

  char session_id[24];
  std::snprintf(session_id, sizeof session_id, "%x%06llx", w.index,
                static_cast<unsigned long long>(++w.next_session & 0xffffff));

  asio::error_code ec;
  sock.non_blocking(true, ec);
  sock.set_option(tcp::no_delay(true), ec);
  auto peer = sock.remote_endpoint(ec);
  rec.client = ToIp(peer.address());
  rec.client_port = peer.port();
  bool counted_ip = false;
  std::string pending;  // bytes read with the PROXY header, beyond it

  // The session body; `return` from the lambda-like block ends it.
  auto body = [&]() -> asio::awaitable<void> {
    if (!ec && Trusted(rec.client)) {
      // A trusted proxy must start with a PROXY header, before our banner.
      conn.waiting_for_client = true;
      std::string buf;
      for (;;) {
        auto [rec_ec] =
            co_await sock.async_wait(tcp::socket::wait_read, kNoThrow);
        if (rec_ec) {
          rec.close_reason = CloseReason::kProxyError;
          Count(Counter::kProxyErrors);
          co_return;
        }
        char tmp[512];
        asio::error_code rec2;
        size_t n = sock.read_some(asio::buffer(tmp), rec2);
        if (rec2 == asio::error::would_block) continue;
        if (rec2) {
          rec.close_reason = CloseReason::kClientClosed;
          co_return;
        }
        buf.append(tmp, n);
        ProxyHeader h;
        size_t used = 0;
        auto r = ParseProxyHeader(buf, &h, &used);
        if (r == ProxyParse::kNeedMore && buf.size() < 4096) continue;
        if (r != ProxyParse::kDone) {
          Count(Counter::kProxyErrors);
          rec.close_reason = CloseReason::kProxyError;
          base::LogLine(base::LogLevel::kWarning, "proxy_error")
              .Kv("session", session_id)
              .Kv("peer", rec.client.ToString());
          co_return;
        }
        Count(Counter::kProxyHeaders);
        if (!h.local) {
          rec.client = h.source;
          rec.client_port = h.source_port;
          rec.via_proxy = true;
        }
        pending = buf.substr(used);
        conn.waiting_for_client = false;
        break;
      }
    }
    conn.idle_deadline = clock.Now() + idle;
    std::string client_text = rec.client.ToString();
    smtp::ServerSession engine(&p.session, &rec, client_text,
                               uint64_t(rec.start_wall * 1e6) ^
                                   (uint64_t(w.index) << 56) ^ w.next_session);
    // Caps, checked on the real client address.
    counted_ip = true;
    int per_ip = ip_counts.Add(rec.client);
    Reply refuse = Reply::kCount;
    if (open.load(std::memory_order_relaxed) > cfg.server.max_connections) {
      refuse = Reply::kCapTotal;
      rec.close_reason = CloseReason::kCapTotal;
      Count(Counter::kConnectionsRefusedTotalCap);
    } else if (per_ip > cfg.server.max_connections_per_ip) {
      refuse = Reply::kCapPerIp;
      rec.close_reason = CloseReason::kCapPerIp;
      Count(Counter::kConnectionsRefusedPerIpCap);
    }
    // The tarpit decides once here (and again if the client talks early).
    std::unique_ptr<Tarpit> tp;
    auto decide = [&] {
      tarpit::Capacity cap;
      cap.open_connections = open.load(std::memory_order_relaxed);
      cap.max_connections = cfg.server.max_connections;
      cap.held = held.load(std::memory_order_relaxed);
      cap.stuttering = stuttering.load(std::memory_order_relaxed);
      tp->Adopt(tarpit::Decide(cfg.tarpit, tp->history, tp->counters, cap,
                               clock.Now()));
      engine.SetFinalReply(
          ToFinalReply(tp->plan.verdict, p.session.final_reply));
    };
    if (refuse == Reply::kCount && cfg.tarpit.enabled) {
      tp = std::make_unique<Tarpit>(w.io, &held, &stuttering);
      conn.timer = &tp->timer;
      tp->history = peers.Lookup(rec.client);
      tp->counters.started = start;
      decide();
      if (tp->plan.shed) {
        refuse = Reply::kCapTotal;
        rec.close_reason = CloseReason::kCapTotal;
        Count(Counter::kTarpitShed);
      } else if (tp->plan.held) {
        rec.tarpitted = true;
        Count(Counter::kTarpitSessions);
        engine.SetReplyMarks(&tp->marks);
      }
    }
    w.out.clear();
    if (refuse != Reply::kCount) {
      engine.Abort(refuse, rec.close_reason, &w.out);
      ++rec.limits_hit;
      co_await WriteAll(sock, w.out);
      co_return;
    }
    bool early = !pending.empty();  // sent with the PROXY header
    if (tp && tp->plan.held) {
      // Wait out the greeting delay, then see whether the client spoke
      // first (postscreen's pregreet test).
      auto pacing =
          tp->plan.Pace(tarpit::Stage::kGreeting, 64, clock.Now(), w.rng);
      if (!co_await TarpitWait(*tp, conn, pacing.delay, rec)) co_return;
      asio::error_code avail_ec;
      early = early || sock.available(avail_ec) > 0;
      if (early) {
        tp->counters.early_talker = true;
        decide();
      }
      tp->marks.clear();
      if (early && tp->plan.reject_early_talker) {
        engine.GreetRefused(&w.out);
      } else {
        engine.Greet(clock.WallSeconds(), &w.out);
      }
      if (!co_await PacedWrite(*tp, conn, sock, w.out, tp->marks, clock, w.rng,
                               rec, /*skip_first_delay=*/true)) {
        co_return;
      }
      tp->marks.clear();
    } else {
      // Bytes waiting before our banner went out: the client spoke first.
      asio::error_code avail_ec;
      early = early || sock.available(avail_ec) > 0;
      engine.Greet(clock.WallSeconds(), &w.out);
      if (!co_await WriteAll(sock, w.out)) {
        rec.close_reason = CloseReason::kClientClosed;
        co_return;
      }
    }
    if (early) {
      rec.early_talker = true;
      Count(Counter::kEarlyTalkers);
    }

    base::Duration read_pause_pending{};
    for (;;) {
      std::string_view input;
      if (!pending.empty()) {
        input = pending;
      } else {
        engine.Trim();
        conn.waiting_for_client = true;
        auto [wait_ec] =
            co_await sock.async_wait(tcp::socket::wait_read, kNoThrow);
        conn.waiting_for_client = false;
        if (conn.aborted) break;
        if (wait_ec) {
          rec.close_reason = CloseReason::kIoError;
          co_return;
        }
        size_t want = kReadBuffer;
        base::Duration read_pause{};
        if (tp && tp->plan.held && engine.in_body()) {
          // The slow reader: a small window and small, spaced reads, so
          // the sender's kernel holds and retransmits its data.
          auto rp = tp->plan.DataRead(clock.Now());
          if (rp.bytes > 0) {
            if (!tp->window_set && tp->plan.receive_window > 0) {
              int win = tp->plan.receive_window;
              setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVBUF, &win,
                         sizeof win);
              setsockopt(sock.native_handle(), IPPROTO_TCP, TCP_WINDOW_CLAMP,
                         &win, sizeof win);
              tp->window_set = true;
            }
            want = std::min<size_t>(want, size_t(rp.bytes));
            read_pause = rp.interval;
            ++rec.slow_reads;
            Count(Counter::kTarpitSlowReads);
          }
        }
        asio::error_code rec_ec;
        size_t n = sock.read_some(asio::buffer(w.read_buf.get(), want), rec_ec);
        if (rec_ec == asio::error::would_block) continue;
        if (rec_ec) {
          rec.close_reason = rec_ec == asio::error::eof
                                 ? CloseReason::kClientClosed
                                 : CloseReason::kIoError;
          if (rec_ec == asio::error::connection_reset) {
            rec.close_reason = CloseReason::kClientClosed;
          }
          co_return;
        }
        input = std::string_view(w.read_buf.get(), n);
        read_pause_pending = read_pause;
      }
      conn.idle_deadline = clock.Now() + idle;
      w.out.clear();
      auto step = engine.Feed(input, clock.WallSeconds(), &w.out);
      pending.clear();
      if (tp && tp->plan.held) {
        std::vector<smtp::ReplyMark> marks;
        marks.swap(tp->marks);
        if (!w.out.empty() &&
            !co_await PacedWrite(*tp, conn, sock, w.out, std::move(marks),
                                 clock, w.rng, rec, false)) {
          if (!conn.aborted) rec.close_reason = CloseReason::kClientClosed;
          co_return;
        }
        if (read_pause_pending > base::Duration::zero() &&
            !co_await TarpitWait(*tp, conn, read_pause_pending, rec)) {
          break;
        }
        read_pause_pending = {};
      } else if (!w.out.empty() && !co_await WriteAll(sock, w.out)) {
        rec.close_reason = CloseReason::kClientClosed;
        co_return;
      }
      if (step.action == smtp::ServerSession::Action::kClose) co_return;
      if (step.action == smtp::ServerSession::Action::kStartTls) {
        // Whatever followed STARTTLS in this read is discarded (RFC 3207).
        asio::ssl::stream<tcp::socket&> tls(sock, *p.tls);
        sock.non_blocking(false, ec);
        if (tp) tp->marks.clear();
        engine.SetReplyMarks(nullptr);  // no pacing inside TLS
        conn.waiting_for_client = true;
        auto [hs_ec] = co_await tls.async_handshake(
            asio::ssl::stream_base::server, kNoThrow);
        conn.waiting_for_client = false;
        if (hs_ec) {
          Count(Counter::kTlsFailures);
          rec.close_reason =
              conn.aborted ? conn.abort_reason : CloseReason::kTlsFailed;
          co_return;
        }
        Count(Counter::kStartTls);
        engine.TlsStarted();
        std::vector<char> buf(16 * 1024);
        for (;;) {
          conn.waiting_for_client = true;
          auto [r_ec, n] =
              co_await tls.async_read_some(asio::buffer(buf), kNoThrow);
          conn.waiting_for_client = false;
          if (conn.aborted) {
            w.out.clear();
            engine.Abort(conn.abort_reply, conn.abort_reason, &w.out);
            conn.aborted = false;  // let the 421 go out
            co_await WriteAllTls(tls, w.out);
            co_return;
          }
          if (r_ec) {
            rec.close_reason = CloseReason::kClientClosed;
            co_return;
          }
          conn.idle_deadline = clock.Now() + idle;
          w.out.clear();
          auto s = engine.Feed(std::string_view(buf.data(), n),
                               clock.WallSeconds(), &w.out);
          if (!w.out.empty() && !co_await WriteAllTls(tls, w.out)) {
            rec.close_reason = CloseReason::kClientClosed;
            co_return;
          }
          if (s.action != smtp::ServerSession::Action::kContinue) co_return;
        }
      }
    }
    // Aborted by the sweeper or by shutdown: say why, then close.
    w.out.clear();
    engine.Abort(conn.abort_reply, conn.abort_reason, &w.out);
    if (conn.abort_reason == CloseReason::kIdleTimeout) {
      Count(Counter::kIdleTimeouts);
    } else if (conn.abort_reason == CloseReason::kSessionTimeout) {
      Count(Counter::kLimitSessionTime);
      ++rec.limits_hit;
    }
    asio::error_code wec;
    sock.write_some(asio::buffer(w.out), wec);  // best effort, never waits
  };
  co_await body();
  if (conn.aborted) rec.close_reason = conn.abort_reason;

  // Unlink and account.
  conn.prev->next = conn.next;
  conn.next->prev = conn.prev;
  if (counted_ip) ip_counts.Remove(rec.client);
  sock.shutdown(tcp::socket::shutdown_both, ec);
  sock.close(ec);
  open.fetch_sub(1, std::memory_order_relaxed);
  base::g_open_connections.fetch_sub(1, std::memory_order_relaxed);
  rec.end_wall = clock.WallSeconds();
  rec.duration_seconds =
      std::chrono::duration<double>(clock.Now() - start).count();
  Count(Counter::kSessions);
  if (cfg.tarpit.enabled) peers.Update(rec);
  if (p.sink) p.sink->Record(rec);
  if (cfg.log.sessions) {
    base::LogLine(base::LogLevel::kInfo, "session")
        .Kv("session", session_id)
        .Kv("client", rec.client.ToString())
        .Kv("port", unsigned(rec.client_port))
        .Kv("proxy", rec.via_proxy ? "yes" : "no")
        .Kv("helo", rec.helo_names.empty() ? "" : rec.helo_names[0].name)
        .Kv("tls", rec.tls ? "yes" : "no")
        .Kv("transactions", unsigned(rec.transactions))
        .Kv("messages", unsigned(rec.messages))
        .Kv("recipients", unsigned(rec.recipients))
        .Kv("bytes", uint64_t(rec.bytes))
        .Kv("errors", unsigned(rec.protocol_errors))
        .Kv("duration", rec.duration_seconds)
        .Kv("close", smtp::CloseReasonName(rec.close_reason));
  }
}

}  // namespace net
