// One connection's life: PROXY header, caps, tarpit plan, banner, the
// read/feed/write loop, STARTTLS, timeouts, and the record at the end.
#include <netinet/tcp.h>

#include <asio/ssl.hpp>

#include "base/log.h"
#include "base/metrics.h"
#include "net/proxy.h"
#include "net/server_impl.h"
#include "tarpit/stutter.h"

namespace net {

using base::Count;
using base::Counter;
using smtp::CloseReason;
using smtp::Reply;
using std::chrono::duration_cast;

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

}  // namespace

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

namespace {

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

namespace {

// Whether we ended the session (the client may still be sending).
bool ClosedByUs(CloseReason r) {
  switch (r) {
    case CloseReason::kQuit:  // the client closes next; nothing is unread
    case CloseReason::kClientClosed:
    case CloseReason::kIoError:
    case CloseReason::kProxyError:
    case CloseReason::kTlsFailed:
    case CloseReason::kShutdown:
      return false;
    default:
      return true;
  }
}

}  // namespace

struct Server::Impl::Ctx {
  Worker& w;
  tcp::socket& sock;
  Conn& conn;
  smtp::SessionRecord& rec;
  const char* session_id;
  base::SteadyTime start;
  base::Duration idle;
  bool counted_ip = false;
  std::string pending;  // bytes read with the PROXY header, beyond it
};

asio::awaitable<void> Server::Impl::Session(Worker& w, tcp::socket sock,
                                            tcp::endpoint peer) {
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
  rec.client = ToIp(peer.address());
  rec.client_port = peer.port();
  Ctx c{w,
        sock,
        conn,
        rec,
        session_id,
        start,
        duration_cast<base::Duration>(
            std::chrono::duration<double>(cfg.smtp.idle_timeout))};
  if (ec) {
    rec.close_reason = CloseReason::kIoError;
  } else if (!Trusted(rec.client) || co_await ReadProxyHeader(c)) {
    co_await Serve(c);
  }
  if (conn.aborted) rec.close_reason = conn.abort_reason;
  if (ClosedByUs(rec.close_reason) && !w.stopping) co_await Linger(c);

  // Unlink and account.
  conn.prev->next = conn.next;
  conn.next->prev = conn.prev;
  if (c.counted_ip) ip_counts.Remove(rec.client);
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

// A lingering close: closing a socket with unread input makes the kernel
// send a reset, which can destroy our last replies (the 421) before the
// client reads them. So send FIN first, then read and discard what the
// client still sends, for at most a second and 1 MiB, then close.
asio::awaitable<void> Server::Impl::Linger(Ctx& c) {
  // Deadlines first: the client sees our FIN at once and may act on it.
  c.conn.aborted = false;
  c.conn.idle_deadline = p.clock->Now() + std::chrono::seconds(1);
  c.conn.session_deadline =
      std::min(c.conn.session_deadline, c.conn.idle_deadline);
  asio::error_code ec;
  c.sock.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  size_t discarded = 0;
  while (discarded < (1 << 20)) {
    c.conn.waiting_for_client = true;
    auto [wait_ec] =
        co_await c.sock.async_wait(tcp::socket::wait_read, kNoThrow);
    c.conn.waiting_for_client = false;
    if (wait_ec || c.conn.aborted) break;
    size_t n =
        c.sock.read_some(asio::buffer(c.w.read_buf.get(), kReadBuffer), ec);
    if (ec == asio::error::would_block) continue;
    if (ec) break;  // EOF: the client has closed too
    discarded += n;
  }
  c.conn.aborted = false;
}

// A trusted proxy must start with a PROXY header, before our banner.
asio::awaitable<bool> Server::Impl::ReadProxyHeader(Ctx& c) {
  auto& [w, sock, conn, rec, session_id, start, idle, counted_ip, pending] = c;
  conn.waiting_for_client = true;
  std::string buf;
  for (;;) {
    auto [wait_ec] = co_await sock.async_wait(tcp::socket::wait_read, kNoThrow);
    if (wait_ec) {
      rec.close_reason = CloseReason::kProxyError;
      Count(Counter::kProxyErrors);
      co_return false;
    }
    char tmp[512];
    asio::error_code read_ec;
    size_t n = sock.read_some(asio::buffer(tmp), read_ec);
    if (read_ec == asio::error::would_block) continue;
    if (read_ec) {
      rec.close_reason = CloseReason::kClientClosed;
      co_return false;
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
      co_return false;
    }
    Count(Counter::kProxyHeaders);
    if (!h.local) {
      rec.client = h.source;
      rec.client_port = h.source_port;
      rec.via_proxy = true;
    }
    pending = buf.substr(used);
    conn.waiting_for_client = false;
    co_return true;
  }
}

// (Re)decides the tarpit plan from what is known now.
void Server::Impl::Decide(Tarpit& tp, smtp::ServerSession& engine) {
  const auto& cfg = p.config;
  tarpit::Capacity cap;
  cap.open_connections = open.load(std::memory_order_relaxed);
  cap.max_connections = cfg.server.max_connections;
  cap.held = held.load(std::memory_order_relaxed);
  cap.stuttering = stuttering.load(std::memory_order_relaxed);
  tp.Adopt(
      tarpit::Decide(cfg.tarpit, tp.history, tp.counters, cap, p.clock->Now()));
  engine.SetFinalReply(ToFinalReply(tp.plan.verdict, p.session.final_reply));
}

// Waits out the greeting delay, then sees whether the client spoke first
// (postscreen's pregreet test), and sends the banner (or a 554) paced.
asio::awaitable<bool> Server::Impl::TarpitGreet(Ctx& c,
                                                smtp::ServerSession& engine,
                                                Tarpit& tp, bool* early) {
  const base::Clock& clock = *p.clock;
  auto pacing =
      tp.plan.Pace(tarpit::Stage::kGreeting, 64, clock.Now(), c.w.rng);
  if (!co_await TarpitWait(tp, c.conn, pacing.delay, c.rec)) co_return false;
  asio::error_code avail_ec;
  *early = *early || c.sock.available(avail_ec) > 0;
  if (*early) {
    tp.counters.early_talker = true;
    Decide(tp, engine);
  }
  tp.marks.clear();
  c.w.out.clear();
  if (*early && tp.plan.reject_early_talker) {
    engine.GreetRefused(&c.w.out);
  } else {
    engine.Greet(clock.WallSeconds(), &c.w.out);
  }
  bool ok = co_await PacedWrite(tp, c.conn, c.sock, c.w.out, tp.marks, clock,
                                c.w.rng, c.rec, /*skip_first_delay=*/true);
  tp.marks.clear();
  co_return ok;
}

// Sends the replies in the worker's buffer paced by the plan, then waits
// out the slow reader's pause. False if the session must end.
asio::awaitable<bool> Server::Impl::TarpitReply(Ctx& c, Tarpit& tp,
                                                base::Duration pause) {
  std::vector<smtp::ReplyMark> marks;
  marks.swap(tp.marks);
  if (!c.w.out.empty() &&
      !co_await PacedWrite(tp, c.conn, c.sock, c.w.out, std::move(marks),
                           *p.clock, c.w.rng, c.rec, false)) {
    co_return false;
  }
  co_return pause <= base::Duration::zero() ||
      co_await TarpitWait(tp, c.conn, pause, c.rec);
}

asio::awaitable<void> Server::Impl::Serve(Ctx& c) {
  auto& [w, sock, conn, rec, session_id, start, idle, counted_ip, pending] = c;
  const auto& cfg = p.config;
  const base::Clock& clock = *p.clock;
  asio::error_code ec;
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
  if (refuse == Reply::kCount && cfg.tarpit.enabled) {
    tp = std::make_unique<Tarpit>(w.io, &held, &stuttering);
    conn.timer = &tp->timer;
    tp->history = peers.Lookup(rec.client);
    tp->counters.started = start;
    Decide(*tp, engine);
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
    if (!co_await TarpitGreet(c, engine, *tp, &early)) co_return;
  } else {
    // Without a greeting delay the banner leaves at once: early talk is
    // only seen with a PROXY header (above) or by the tarpit's pregreet
    // wait, not with an extra ioctl per connection here.
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
      bool ok = co_await TarpitReply(c, *tp, read_pause_pending);
      read_pause_pending = {};
      if (!ok && conn.aborted) break;
      if (!ok) {
        rec.close_reason = CloseReason::kClientClosed;
        co_return;
      }
    } else if (!w.out.empty() && !co_await WriteAll(sock, w.out)) {
      rec.close_reason = CloseReason::kClientClosed;
      co_return;
    }
    if (step.action == smtp::ServerSession::Action::kClose) co_return;
    if (step.action == smtp::ServerSession::Action::kStartTls) {
      // Whatever followed STARTTLS in this read is discarded (RFC 3207).
      if (tp) tp->marks.clear();
      engine.SetReplyMarks(nullptr);  // no pacing inside TLS
      co_await ServeTls(c, engine);
      co_return;
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
}

// The rest of a session after STARTTLS (no tarpit pacing inside TLS).
asio::awaitable<void> Server::Impl::ServeTls(Ctx& c,
                                             smtp::ServerSession& engine) {
  auto& [w, sock, conn, rec, session_id, start, idle, counted_ip, pending] = c;
  const base::Clock& clock = *p.clock;
  asio::error_code ec;
  // Whatever followed STARTTLS in this read is discarded (RFC 3207).
  asio::ssl::stream<tcp::socket&> tls(sock, *p.tls);
  sock.non_blocking(false, ec);
  conn.waiting_for_client = true;
  auto [hs_ec] =
      co_await tls.async_handshake(asio::ssl::stream_base::server, kNoThrow);
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
    auto [r_ec, n] = co_await tls.async_read_some(asio::buffer(buf), kNoThrow);
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
    auto s = engine.Feed(std::string_view(buf.data(), n), clock.WallSeconds(),
                         &w.out);
    if (!w.out.empty() && !co_await WriteAllTls(tls, w.out)) {
      rec.close_reason = CloseReason::kClientClosed;
      co_return;
    }
    if (s.action != smtp::ServerSession::Action::kContinue) co_return;
  }
}

}  // namespace net
