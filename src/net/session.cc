// One connection's life: PROXY header, caps, tarpit plan, banner, the
// read/feed/write loop, STARTTLS, timeouts, the lingering close and the
// record at the end.
//
// A session is one heap object driven by callbacks, not a coroutine: a held
// connection then costs that object, asio's per-socket state and one small
// pending operation (about 1 KiB in all), where coroutine frames, their
// awaitable threads and asio's initiation frames cost nearly three times as
// much. Every pending operation's handler captures only `this`; exactly one
// operation (a read wait, a write, or the tarpit's timer) is pending at a
// time, and the session deletes itself in Finish(). Inside TLS, where memory
// is dominated by OpenSSL anyway, a coroutine serves the rest.
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <asio/ssl.hpp>
#include <optional>

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

// Handlers of a session's operations are allocated at their exact size.
// asio's default recycles per-thread blocks of any larger size (often an
// accept's), which an idle session would then keep for hours.
template <typename T>
struct ExactAllocator {
  using value_type = T;
  ExactAllocator() = default;
  template <typename U>
  ExactAllocator(const ExactAllocator<U>&) {}  // NOLINT: rebinding
  T* allocate(size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, size_t) { ::operator delete(p); }
  bool operator==(const ExactAllocator&) const { return true; }
  bool operator!=(const ExactAllocator&) const { return false; }
};

template <typename F>
struct Handler {
  F f;
  using allocator_type = ExactAllocator<void>;
  allocator_type get_allocator() const noexcept { return {}; }
  template <typename... A>
  void operator()(A&&... a) {
    f(std::forward<A>(a)...);
  }
};
template <typename F>
Handler<F> Bind(F f) {
  return Handler<F>{std::move(f)};
}

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

// A non-blocking read straight from the descriptor (MSG_DONTWAIT: no
// ioctl per connection to make the socket non-blocking).
enum class Got { kData, kWouldBlock, kEof, kError };
Got Recv(int fd, char* buf, size_t want, size_t* n) {
  for (;;) {
    ssize_t r = ::recv(fd, buf, want, MSG_DONTWAIT);
    if (r > 0) {
      *n = size_t(r);
      return Got::kData;
    }
    if (r == 0) return Got::kEof;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Got::kWouldBlock;
    if (errno == ECONNRESET) return Got::kEof;  // the client went away
    return Got::kError;
  }
}

// What an operation did: finished at once, failed, or is pending (then the
// session's continuation runs when it ends).
enum class Io { kDone, kFailed, kPending };

}  // namespace

struct Session;
using Then = void (Session::*)(bool ok);

// A session's tarpit: its plan, the slots it holds, its timer, and the paced
// write in progress.
struct Tarpit {
  Tarpit(Worker& w, std::atomic<int64_t>* held,
         std::atomic<int64_t>* stuttering)
      : timer(w.io.get_executor()), held_(held), stuttering_(stuttering) {}
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
  Timer timer;
  std::vector<smtp::ReplyMark> marks;  // filled by the engine
  bool window_set = false;

  // The paced write in progress (only while there is one): its own copies
  // of the replies and their marks (the worker's buffers serve other
  // sessions while this one waits).
  struct Paced {
    std::string out;
    std::vector<smtp::ReplyMark> marks;
    size_t index = 0;  // next mark
    size_t begin = 0;  // start of the next reply in out
    std::optional<tarpit::StutterCursor> cursor;
    std::string_view chunk;      // to send once the wait ends
    bool chunk_pending = false;  // chunk is waiting for its timer
    bool skip_first_delay = false;
    Then then = nullptr;
  };
  std::unique_ptr<Paced> paced;

 private:
  std::atomic<int64_t>* held_;
  std::atomic<int64_t>* stuttering_;
};

struct Session {
  Session(Server::Impl& s, Worker& w, Socket sock)
      : s(s), w(w), sock(std::move(sock)) {}

  void Start(const tcp::endpoint& peer);

  // Primitives.
  Io StartSend(std::string_view data, Then then);
  void Send(std::string_view data, Then then) {
    Go(StartSend(data, then), then);
  }
  Io StartWait(base::Duration d, Then then);
  void Go(Io r, Then then) {
    if (r != Io::kPending) (this->*then)(r == Io::kDone);
  }
  void Resume(bool ok) {
    Then t = then;
    then = nullptr;
    (this->*t)(ok);
  }
  void StartPaced(std::string_view out, std::vector<smtp::ReplyMark> marks,
                  bool skip_first_delay, Then then);
  void PaceStep(bool ok);

  // Phases, in order.
  void WaitProxy();
  void OnProxyReadable(const asio::error_code& ec);
  void BeginSmtp();
  void Decide();
  void GreetAfterDelay(bool ok);
  void AfterPacedGreeting(bool ok);
  void AfterGreeting(bool ok);
  void Next();
  void OnReadable(const asio::error_code& ec);
  void Process(std::string_view input);
  void AfterPacedReply(bool ok);
  void AfterTarpitReply(bool ok);
  void AfterReply(bool ok);
  void Aborted();
  void StartTls();
  void End();
  void EndAfter(bool) { End(); }
  void Linger();
  void LingerWait();
  void Finish();
  std::array<char, 24> Id() const {
    std::array<char, 24> id;
    std::snprintf(id.data(), id.size(), "%x%06x", w.index,
                  unsigned(serial & 0xffffff));
    return id;
  }

  Server::Impl& s;
  Worker& w;
  Socket sock;
  Conn conn;
  smtp::SessionRecord rec;
  std::optional<smtp::ServerSession> engine;
  std::unique_ptr<Tarpit> tp;
  // The PROXY header as it arrives, then the bytes read beyond it.
  std::unique_ptr<std::string> pending;
  // Reply bytes the socket did not take at once, being written.
  std::unique_ptr<std::string> backlog;
  base::SteadyTime start;
  base::Duration read_pause{};  // the slow reader's pause after this read
  Then then = nullptr;          // runs when the pending write or wait ends
  uint32_t serial = 0;
  uint32_t lingered = 0;  // bytes discarded by the lingering close
  smtp::ServerSession::Action action = smtp::ServerSession::Action::kContinue;
  bool counted_ip = false;
  bool early = false;  // spoke before our banner
};

void Server::Impl::StartSession(Worker& w, Socket sock,
                                const tcp::endpoint& peer) {
  (new Session(*this, w, std::move(sock)))->Start(peer);
}

// Sends data without copying when the socket takes it at once (the usual
// case); otherwise copies the rest and writes it asynchronously.
Io Session::StartSend(std::string_view data, Then next) {
  if (data.empty()) return Io::kDone;
  ssize_t n;
  do {
    n = ::send(sock.native_handle(), data.data(), data.size(),
               MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Io::kFailed;
    n = 0;
  }
  if (size_t(n) == data.size()) return Io::kDone;
  backlog = std::make_unique<std::string>(data.substr(size_t(n)));
  then = next;
  asio::async_write(sock, asio::buffer(*backlog),
                    Bind([this](const asio::error_code& ec, size_t) {
                      backlog.reset();
                      Resume(!ec);
                    }));
  return Io::kPending;
}

// Waits d on the tarpit's timer; fails if the session was aborted.
Io Session::StartWait(base::Duration d, Then next) {
  if (d <= base::Duration::zero()) {
    return conn.aborted ? Io::kFailed : Io::kDone;
  }
  tp->timer.expires_after(d);
  then = next;
  tp->timer.async_wait(Bind([this, d](const asio::error_code&) {
    double secs = std::chrono::duration<double>(d).count();
    rec.delay_seconds += secs;
    Count(Counter::kTarpitDelayMs, uint64_t(secs * 1000));
    Resume(!conn.aborted);
  }));
  return Io::kPending;
}

// Sends the replies in out one by one, each paced by the plan for its stage
// (delay, then stutter chunks); then `next`.
void Session::StartPaced(std::string_view out,
                         std::vector<smtp::ReplyMark> marks,
                         bool skip_first_delay, Then next) {
  tp->paced = std::make_unique<Tarpit::Paced>();
  auto& pw = *tp->paced;
  pw.out.assign(out);
  pw.marks = std::move(marks);
  pw.skip_first_delay = skip_first_delay;
  pw.then = next;
  PaceStep(true);
}

void Session::PaceStep(bool ok) {
  auto& pw = *tp->paced;
  while (ok) {
    Io r;
    if (pw.chunk_pending) {  // its wait is over: send it
      pw.chunk_pending = false;
      r = StartSend(pw.chunk, &Session::PaceStep);
    } else if (pw.cursor && !pw.cursor->Done()) {
      auto chunk = pw.cursor->Next();
      pw.chunk = chunk.bytes;
      pw.chunk_pending = true;
      r = StartWait(chunk.wait, &Session::PaceStep);
    } else if (pw.index < pw.marks.size()) {
      const auto& m = pw.marks[pw.index++];
      std::string_view reply(pw.out.data() + pw.begin, m.end - pw.begin);
      pw.begin = m.end;
      auto pacing = tp->plan.Pace(StageOf(m.reply), reply.size(),
                                  s.p.clock->Now(), w.rng);
      if (pw.skip_first_delay) {
        pacing.delay = base::Duration::zero();
        pw.skip_first_delay = false;
      }
      if (pacing.chunk_bytes > 0) {
        ++rec.replies_stuttered;
        Count(Counter::kTarpitStuttered);
      }
      pw.cursor.emplace(reply, pacing);
      continue;
    } else if (pw.begin < pw.out.size()) {  // bytes without a mark
      auto rest = std::string_view(pw.out).substr(pw.begin);
      pw.begin = pw.out.size();
      r = StartSend(rest, &Session::PaceStep);
    } else {
      break;  // all sent
    }
    if (r == Io::kPending) return;
    ok = r == Io::kDone;
  }
  Then next = pw.then;
  tp->paced.reset();  // a tarpitted session mostly waits: keep no copies
  (this->*next)(ok);
}

void Session::Start(const tcp::endpoint& peer) {
  const auto& cfg = s.p.config;
  const base::Clock& clock = *s.p.clock;
  s.open.fetch_add(1, std::memory_order_relaxed);
  base::g_open_connections.fetch_add(1, std::memory_order_relaxed);
  rec.start_wall = clock.WallSeconds();
  start = clock.Now();
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
  serial = uint32_t(++w.next_session);
  rec.client = ToIp(peer.address());
  rec.client_port = peer.port();
  if (s.Trusted(rec.client)) {
    // A trusted proxy must start with a PROXY header, before our banner.
    pending = std::make_unique<std::string>();
    conn.waiting_for_client = true;
    return WaitProxy();
  }
  BeginSmtp();
}

void Session::WaitProxy() {
  sock.async_wait(Socket::wait_read, Bind([this](const asio::error_code& ec) {
                    OnProxyReadable(ec);
                  }));
}

void Session::OnProxyReadable(const asio::error_code& ec) {
  if (ec) {
    rec.close_reason = CloseReason::kProxyError;
    Count(Counter::kProxyErrors);
    return End();
  }
  char tmp[512];
  size_t n = 0;
  switch (Recv(sock.native_handle(), tmp, sizeof tmp, &n)) {
    case Got::kWouldBlock:
      return WaitProxy();
    case Got::kEof:
    case Got::kError:
      rec.close_reason = CloseReason::kClientClosed;
      return End();
    case Got::kData:
      break;
  }
  pending->append(tmp, n);
  ProxyHeader h;
  size_t used = 0;
  auto r = ParseProxyHeader(*pending, &h, &used);
  if (r == ProxyParse::kNeedMore && pending->size() < 4096) return WaitProxy();
  if (r != ProxyParse::kDone) {
    Count(Counter::kProxyErrors);
    rec.close_reason = CloseReason::kProxyError;
    base::LogLine(base::LogLevel::kWarning, "proxy_error")
        .Kv("session", Id().data())
        .Kv("peer", rec.client.ToString());
    return End();
  }
  Count(Counter::kProxyHeaders);
  if (!h.local) {
    rec.client = h.source;
    rec.client_port = h.source_port;
    rec.via_proxy = true;
  }
  pending->erase(0, used);
  if (pending->empty()) pending.reset();
  conn.waiting_for_client = false;
  BeginSmtp();
}

// (Re)decides the tarpit plan from what is known now.
void Session::Decide() {
  const auto& cfg = s.p.config;
  tarpit::Capacity cap;
  cap.open_connections = s.open.load(std::memory_order_relaxed);
  cap.max_connections = cfg.server.max_connections;
  cap.held = s.held.load(std::memory_order_relaxed);
  cap.stuttering = s.stuttering.load(std::memory_order_relaxed);
  tp->Adopt(tarpit::Decide(cfg.tarpit, tp->history, tp->counters, cap,
                           s.p.clock->Now()));
  engine->SetFinalReply(
      ToFinalReply(tp->plan.verdict, s.p.session.final_reply));
}

void Session::BeginSmtp() {
  const auto& cfg = s.p.config;
  const base::Clock& clock = *s.p.clock;
  conn.idle_deadline = clock.Now() + s.idle_timeout;
  engine.emplace(&s.p.session, &rec, rec.client.ToString(),
                 uint64_t(rec.start_wall * 1e6) ^ (uint64_t(w.index) << 56) ^
                     w.next_session);
  // Caps, checked on the real client address.
  counted_ip = true;
  int per_ip = s.ip_counts.Add(rec.client);
  Reply refuse = Reply::kCount;
  if (s.open.load(std::memory_order_relaxed) > cfg.server.max_connections) {
    refuse = Reply::kCapTotal;
    rec.close_reason = CloseReason::kCapTotal;
    Count(Counter::kConnectionsRefusedTotalCap);
  } else if (per_ip > cfg.server.max_connections_per_ip) {
    refuse = Reply::kCapPerIp;
    rec.close_reason = CloseReason::kCapPerIp;
    Count(Counter::kConnectionsRefusedPerIpCap);
  }
  // The tarpit decides once here (and again if the client talks early).
  if (refuse == Reply::kCount && cfg.tarpit.enabled) {
    tp = std::make_unique<Tarpit>(w, &s.held, &s.stuttering);
    conn.timer = &tp->timer;
    tp->history = s.peers.Lookup(rec.client);
    tp->counters.started = start;
    Decide();
    if (tp->plan.shed) {
      refuse = Reply::kCapTotal;
      rec.close_reason = CloseReason::kCapTotal;
      Count(Counter::kTarpitShed);
    } else if (tp->plan.held) {
      rec.tarpitted = true;
      Count(Counter::kTarpitSessions);
      engine->SetReplyMarks(&tp->marks);
    }
  }
  w.out.clear();
  if (refuse != Reply::kCount) {
    engine->Abort(refuse, rec.close_reason, &w.out);
    ++rec.limits_hit;
    return Send(w.out, &Session::EndAfter);
  }
  early = pending != nullptr;  // bytes came with the PROXY header
  if (tp && tp->plan.held) {
    // Wait out the greeting delay, then see whether the client spoke first
    // (postscreen's pregreet test).
    auto pacing =
        tp->plan.Pace(tarpit::Stage::kGreeting, 64, clock.Now(), w.rng);
    return Go(StartWait(pacing.delay, &Session::GreetAfterDelay),
              &Session::GreetAfterDelay);
  }
  // Without a greeting delay the banner leaves at once: early talk is only
  // seen with a PROXY header (above) or by the tarpit's pregreet wait, not
  // with an extra ioctl per connection here.
  engine->Greet(clock.WallSeconds(), &w.out);
  Send(w.out, &Session::AfterGreeting);
}

void Session::GreetAfterDelay(bool ok) {
  if (!ok) return conn.aborted ? Aborted() : End();  // 421 even before 220
  asio::error_code avail_ec;
  early = early || sock.available(avail_ec) > 0;
  if (early) {
    tp->counters.early_talker = true;
    Decide();
  }
  tp->marks.clear();
  w.out.clear();
  if (early && tp->plan.reject_early_talker) {
    engine->GreetRefused(&w.out);
  } else {
    engine->Greet(s.p.clock->WallSeconds(), &w.out);
  }
  std::vector<smtp::ReplyMark> marks;
  marks.swap(tp->marks);
  StartPaced(w.out, std::move(marks), /*skip_first_delay=*/true,
             &Session::AfterPacedGreeting);
}

void Session::AfterPacedGreeting(bool ok) {
  if (!ok) return conn.aborted ? Aborted() : End();
  AfterGreeting(true);
}

void Session::AfterGreeting(bool ok) {
  if (!ok) {
    rec.close_reason = CloseReason::kClientClosed;
    return End();
  }
  if (early) {
    rec.early_talker = true;
    Count(Counter::kEarlyTalkers);
  }
  Next();
}

// The head of the read loop: bytes left from the PROXY header, or a wait
// for the client.
void Session::Next() {
  if (pending) {
    auto input = std::move(pending);
    return Process(*input);  // Feed consumes input before anything waits
  }
  engine->Trim();
  conn.waiting_for_client = true;
  sock.async_wait(Socket::wait_read, Bind([this](const asio::error_code& ec) {
                    conn.waiting_for_client = false;
                    OnReadable(ec);
                  }));
}

void Session::OnReadable(const asio::error_code& ec) {
  if (conn.aborted) return Aborted();
  if (ec) {
    rec.close_reason = CloseReason::kIoError;
    return End();
  }
  size_t want = kReadBuffer;
  base::Duration pause{};
  if (tp && tp->plan.held && engine->in_body()) {
    // The slow reader: a small window and small, spaced reads, so the
    // sender's kernel holds and retransmits its data.
    auto rp = tp->plan.DataRead(s.p.clock->Now());
    if (rp.bytes > 0) {
      if (!tp->window_set && tp->plan.receive_window > 0) {
        int win = tp->plan.receive_window;
        setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVBUF, &win,
                   sizeof win);
        setsockopt(sock.native_handle(), IPPROTO_TCP, TCP_WINDOW_CLAMP, &win,
                   sizeof win);
        tp->window_set = true;
      }
      want = std::min<size_t>(want, size_t(rp.bytes));
      pause = rp.interval;
      ++rec.slow_reads;
      Count(Counter::kTarpitSlowReads);
    }
  }
  size_t n = 0;
  switch (Recv(sock.native_handle(), w.read_buf.get(), want, &n)) {
    case Got::kWouldBlock:
      return Next();
    case Got::kEof:
      rec.close_reason = CloseReason::kClientClosed;
      return End();
    case Got::kError:
      rec.close_reason = CloseReason::kIoError;
      return End();
    case Got::kData:
      break;
  }
  read_pause = pause;
  Process(std::string_view(w.read_buf.get(), n));
}

void Session::Process(std::string_view input) {
  const base::Clock& clock = *s.p.clock;
  conn.idle_deadline = clock.Now() + s.idle_timeout;
  w.out.clear();
  action = engine->Feed(input, clock.WallSeconds(), &w.out).action;
  if (tp && tp->plan.held) {
    std::vector<smtp::ReplyMark> marks;
    marks.swap(tp->marks);
    if (w.out.empty()) return AfterPacedReply(true);
    return StartPaced(w.out, std::move(marks), false,
                      &Session::AfterPacedReply);
  }
  Send(w.out, &Session::AfterReply);
}

// The tarpit's replies are out: wait out the slow reader's pause.
void Session::AfterPacedReply(bool ok) {
  base::Duration pause = read_pause;
  read_pause = {};
  if (!ok || pause <= base::Duration::zero()) return AfterTarpitReply(ok);
  Go(StartWait(pause, &Session::AfterTarpitReply), &Session::AfterTarpitReply);
}

void Session::AfterTarpitReply(bool ok) {
  if (!ok && conn.aborted) return Aborted();
  AfterReply(ok);
}

void Session::AfterReply(bool ok) {
  if (!ok) {
    rec.close_reason = CloseReason::kClientClosed;
    return End();
  }
  switch (action) {
    case smtp::ServerSession::Action::kClose:
      return End();
    case smtp::ServerSession::Action::kStartTls:
      // Whatever followed STARTTLS in this read is discarded (RFC 3207).
      if (tp) tp->marks.clear();
      engine->SetReplyMarks(nullptr);  // no pacing inside TLS
      return StartTls();
    case smtp::ServerSession::Action::kContinue:
      return Next();
  }
}

// Aborted by the sweeper or by shutdown: say why, then close.
void Session::Aborted() {
  w.out.clear();
  engine->Abort(conn.abort_reply, conn.abort_reason, &w.out);
  if (conn.abort_reason == CloseReason::kIdleTimeout) {
    Count(Counter::kIdleTimeouts);
  } else if (conn.abort_reason == CloseReason::kSessionTimeout) {
    Count(Counter::kLimitSessionTime);
    ++rec.limits_hit;
  }
  // Best effort, never waits.
  [[maybe_unused]] ssize_t n =
      ::send(sock.native_handle(), w.out.data(), w.out.size(),
             MSG_DONTWAIT | MSG_NOSIGNAL);
  End();
}

namespace {

template <typename Stream>
asio::awaitable<bool> WriteAllTls(Stream& s, std::string_view data) {
  std::string copy(data);
  auto [ec, n] = co_await asio::async_write(s, asio::buffer(copy), kNoThrow);
  co_return !ec;
}

// The rest of a session after STARTTLS (no tarpit pacing inside TLS).
asio::awaitable<void> ServeTls(Session& se, asio::ssl::context& ctx) {
  Conn& conn = se.conn;
  smtp::SessionRecord& rec = se.rec;
  Worker& w = se.w;
  auto& engine = *se.engine;
  const base::Clock& clock = *se.s.p.clock;
  asio::ssl::stream<Socket&> tls(se.sock, ctx);
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
    conn.idle_deadline = clock.Now() + se.s.idle_timeout;
    w.out.clear();
    auto step = engine.Feed(std::string_view(buf.data(), n),
                            clock.WallSeconds(), &w.out);
    if (!w.out.empty() && !co_await WriteAllTls(tls, w.out)) {
      rec.close_reason = CloseReason::kClientClosed;
      co_return;
    }
    if (step.action != smtp::ServerSession::Action::kContinue) co_return;
  }
}

}  // namespace

void Session::StartTls() {
  asio::co_spawn(w.io, ServeTls(*this, *s.p.tls),
                 [this](std::exception_ptr) { End(); });
}

void Session::End() {
  if (conn.aborted) rec.close_reason = conn.abort_reason;
  if (ClosedByUs(rec.close_reason) && !w.stopping) return Linger();
  Finish();
}

// A lingering close: closing a socket with unread input makes the kernel
// send a reset, which can destroy our last replies (the 421) before the
// client reads them. So send FIN first, then read and discard what the
// client still sends, for at most a second and 1 MiB, then close.
void Session::Linger() {
  // Deadlines first: the client sees our FIN at once and may act on it.
  conn.aborted = false;
  conn.idle_deadline = s.p.clock->Now() + std::chrono::seconds(1);
  conn.session_deadline = std::min(conn.session_deadline, conn.idle_deadline);
  asio::error_code ec;
  sock.shutdown(Socket::shutdown_send, ec);
  if (ec) return Finish();
  LingerWait();
}

void Session::LingerWait() {
  conn.waiting_for_client = true;
  sock.async_wait(
      Socket::wait_read, Bind([this](const asio::error_code& ec) {
        conn.waiting_for_client = false;
        if (ec || conn.aborted) return Finish();
        size_t n = 0;
        switch (Recv(sock.native_handle(), w.read_buf.get(), kReadBuffer, &n)) {
          case Got::kWouldBlock:
            return LingerWait();
          case Got::kEof:  // the client has closed too
          case Got::kError:
            return Finish();
          case Got::kData:
            break;
        }
        lingered += uint32_t(n);
        if (lingered >= (1u << 20)) return Finish();
        LingerWait();
      }));
}

// Unlinks, accounts, records, logs, and deletes the session.
void Session::Finish() {
  const auto& cfg = s.p.config;
  const base::Clock& clock = *s.p.clock;
  conn.aborted = false;
  conn.prev->next = conn.next;
  conn.next->prev = conn.prev;
  if (counted_ip) s.ip_counts.Remove(rec.client);
  asio::error_code ec;
  sock.close(ec);
  s.open.fetch_sub(1, std::memory_order_relaxed);
  base::g_open_connections.fetch_sub(1, std::memory_order_relaxed);
  rec.end_wall = clock.WallSeconds();
  rec.duration_seconds =
      std::chrono::duration<double>(clock.Now() - start).count();
  Count(Counter::kSessions);
  if (cfg.tarpit.enabled) s.peers.Update(rec);
  if (s.p.sink) s.p.sink->Record(rec);
  if (cfg.log.sessions) {
    base::LogLine(base::LogLevel::kInfo, "session")
        .Kv("session", Id().data())
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
  delete this;
}

}  // namespace net
