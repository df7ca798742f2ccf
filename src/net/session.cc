// The executor of one connection: carries out the commands of its
// conn::Connection machine with Asio calls and turns socket events into the
// machine's events. Everything that decides (pacing, limits, timeouts, 421,
// STARTTLS, the lingering close) is in the machine; what is here is I/O.
//
// A session is one heap object driven by callbacks, not a coroutine: a held
// connection costs that object, asio's per-socket state and one small
// pending operation. Every pending operation's handler captures only
// `this`; exactly one operation (a read wait, a write wait, the timer or
// the TLS handshake) is pending at a time, and the session deletes itself
// when the machine says close.
//
// The byte stream is plain TCP (non-blocking send/recv straight on the
// descriptor, with readiness waits) or TLS over it (asio::ssl::stream);
// only DoRead, DoSend and the handshake tell them apart.
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <asio/ssl.hpp>
#include <ctime>
#include <random>

#include "base/log.h"
#include "base/metrics.h"
#include "net/server_impl.h"
#include "net/tcp_retrans.h"

namespace net {

using base::Count;
using base::Counter;
using Kind = conn::Command::Kind;

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

// Whether the peer has sent its FIN or reset the connection (input still
// queued or not).
bool PeerGone(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 &&
         (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

using TlsStream = asio::ssl::stream<Socket&>;
constexpr size_t kTlsBuffer = 16 * 1024;

}  // namespace

// The list links come first (Conn), so the sweeper walks sessions.
struct Session : Conn {
  Session(Server::Impl& s, Worker& w, Socket sock)
      : s(s), w(w), sock(std::move(sock)), m(&w.env) {}

  void Run(conn::Command c);
  void DoRead();
  void DoSend();
  // A tarpit wait: the timer, and the watch for the peer's departure.
  void WatchPeer();
  void WaitDone();
  void Finish();
  // The pending operation ended: its result, or the abort the sweeper or
  // shutdown ordered meanwhile.
  template <typename F>
  void Complete(F&& result) {
    if (aborted) {
      aborted = false;
      return Run(m.OnAbort(abort_reason));
    }
    Run(result());
  }
  std::array<char, 40> Id() const { return SessionId(w.index, serial); }

  Server::Impl& s;
  Worker& w;
  Socket sock;
  conn::Connection m;
  struct Tls {
    Tls(Socket& sock, asio::ssl::context& ctx) : stream(sock, ctx) {}
    TlsStream stream;
    char buf[kTlsBuffer];
  };
  // What only some sessions need, made at the first wait (the tarpit's) or
  // at STARTTLS.
  struct Extra {
    explicit Extra(Executor ex) : timer(ex) {}
    Timer timer;
    std::unique_ptr<Tls> tls;
  };
  Extra& extra() {
    if (!extra_) extra_ = std::make_unique<Extra>(w.io.get_executor());
    return *extra_;
  }
  Timer* timer() { return extra_ ? &extra_->timer : nullptr; }
  Tls* tls() { return extra_ ? extra_->tls.get() : nullptr; }
  std::unique_ptr<Extra> extra_;
  uint32_t serial = 0;
  bool peek = false;  // the timer's wait asks whether input is waiting
  bool gone = false;  // the peer left during the wait
  uint8_t waits = 0;  // a wait's operations pending: the timer, the watch
};

void Server::Impl::StartSession(Worker& w, Socket sock,
                                const tcp::endpoint& peer) {
  auto* se = new Session(*this, w, std::move(sock));
  se->serial = uint32_t(++w.next_session);
  // Link into the worker's list for the sweeper.
  se->prev = w.head.prev;
  se->next = &w.head;
  w.head.prev->next = se;
  w.head.prev = se;
  base::g_open_connections.fetch_add(1, std::memory_order_relaxed);
  base::IpAddress client = ToIp(peer.address());
  se->Run(se->m.Start(client, peer.port(), Trusted(client)));
}

std::optional<peer::CloseReason> Server::Impl::SessionExpired(
    Conn* c, base::SteadyTime now) {
  return static_cast<Session*>(c)->m.Expired(now);
}

bool Server::Impl::SessionHeld(Conn* c) {
  return static_cast<Session*>(c)->m.held();
}

void Server::Impl::AbortSession(Conn* c, peer::CloseReason why) {
  c->aborted = true;
  c->abort_reason = why;
  asio::error_code ignored;
  auto* se = static_cast<Session*>(c);
  se->sock.cancel(ignored);
  if (Timer* t = se->timer()) t->cancel();
}

void Session::Run(conn::Command c) {
  for (;;) {
    switch (c.kind) {
      case Kind::kRead:
        if (c.window > 0) {
          int win = c.window;
          setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVBUF, &win,
                     sizeof win);
          setsockopt(sock.native_handle(), IPPROTO_TCP, TCP_WINDOW_CLAMP, &win,
                     sizeof win);
        }
        return DoRead();
      case Kind::kSend:
        if (!c.wait && !tls()) {
          ssize_t n;
          do {
            n = ::send(sock.native_handle(), c.data.data(), c.data.size(),
                       MSG_DONTWAIT | MSG_NOSIGNAL);
          } while (n < 0 && errno == EINTR);
          if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            c = m.OnError();
          } else {
            c = m.OnSent(n < 0 ? 0 : size_t(n));
          }
          continue;
        }
        if (!c.wait) {  // TLS writes only asynchronously
          c = m.OnSent(0);
          continue;
        }
        return DoSend();
      case Kind::kWait:
        if (c.delay <= base::Duration::zero()) {
          asio::error_code ec;
          c = m.OnTimer(c.peek && sock.available(ec) > 0);
          continue;
        }
        // The timer, and beside it (if the wait is long: kWatchPeerFrom) a
        // wait for the socket to turn readable (input, the peer's FIN, or a
        // reset) so that a peer that leaves during the delay frees its slot
        // at once. Whichever ends first cancels the other; the machine
        // hears of it when both are done.
        peek = c.peek;
        gone = false;
        waits = c.delay >= kWatchPeerFrom ? 2 : 1;
        extra().timer.expires_after(c.delay);
        extra().timer.async_wait(Bind([this](const asio::error_code&) {
          if (waits == 2) {  // the delay ran out (or an abort): stop watching
            asio::error_code ignored;
            sock.cancel(ignored);
          }
          WaitDone();
        }));
        if (waits == 2) WatchPeer();
        return;
      case Kind::kStartTls:
        extra().tls = std::make_unique<Tls>(sock, *s.p.tls);
        tls()->stream.async_handshake(
            asio::ssl::stream_base::server,
            Bind([this](const asio::error_code& ec) {
              Complete([&] { return m.OnTlsDone(!ec); });
            }));
        return;
      case Kind::kHalfClose: {
        asio::error_code ec;
        sock.shutdown(Socket::shutdown_send, ec);
        c = m.OnHalfClosed(!ec);
        continue;
      }
      case Kind::kClose:
        return Finish();
    }
  }
}

// asio's reactor learns of readiness by edge (EPOLLET), so the watch wakes
// at each arrival during the wait: input, then perhaps the FIN. A FIN that
// came before the wait began is not an edge seen here; the machine learns
// of it at its next read or write, as before.
void Session::WatchPeer() {
  sock.async_wait(Socket::wait_read, Bind([this](const asio::error_code& ec) {
                    if (!ec && waits == 2) {
                      if (!PeerGone(sock.native_handle())) {
                        return WatchPeer();  // input: the peer is still there
                      }
                      gone = true;
                      extra().timer.cancel();
                    }
                    WaitDone();
                  }));
}

void Session::WaitDone() {
  if (--waits > 0) return;
  Complete([this] {
    if (gone) return m.OnEof();
    asio::error_code ec;
    return m.OnTimer(peek && sock.available(ec) > 0);
  });
}

void Session::DoRead() {
  // The machine keeps the size of the read (and the bytes of a send), so a
  // pending operation's handler needs only `this`.
  if (Tls* t = tls()) {
    t->stream.async_read_some(
        asio::buffer(t->buf, std::min(m.read_size(), kTlsBuffer)),
        Bind([this](const asio::error_code& ec, size_t n) {
          Complete([&] {
            if (ec) return m.OnEof();
            return m.OnRead(std::string_view(tls()->buf, n));
          });
        }));
    return;
  }
  sock.async_wait(
      Socket::wait_read, Bind([this](const asio::error_code& ec) {
        Complete([&] {
          if (ec) return m.OnError();
          size_t n = 0;
          size_t want = std::min(m.read_size(), kReadBuffer);
          switch (Recv(sock.native_handle(), w.read_buf.get(), want, &n)) {
            case Got::kWouldBlock: {
              conn::Command again;
              again.kind = Kind::kRead;
              again.bytes = want;
              return again;
            }
            case Got::kEof:
              return m.OnEof();
            case Got::kError:
              return m.OnError();
            case Got::kData:
              break;
          }
          return m.OnRead(std::string_view(w.read_buf.get(), n));
        });
      }));
}

void Session::DoSend() {
  if (Tls* t = tls()) {
    std::string_view sending = m.sending();
    t->stream.async_write_some(
        asio::buffer(sending.data(), sending.size()),
        Bind([this](const asio::error_code& ec, size_t n) {
          Complete([&] { return ec ? m.OnError() : m.OnSent(n); });
        }));
    return;
  }
  sock.async_wait(Socket::wait_write, Bind([this](const asio::error_code& ec) {
                    Complete([&] {
                      if (ec) return m.OnError();
                      std::string_view sending = m.sending();
                      ssize_t n;
                      do {
                        n = ::send(sock.native_handle(), sending.data(),
                                   sending.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
                      } while (n < 0 && errno == EINTR);
                      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                        return m.OnError();
                      }
                      return m.OnSent(n < 0 ? 0 : size_t(n));
                    });
                  }));
}

// Unlinks, records, logs, and deletes the session.
void Session::Finish() {
  prev->next = next;
  next->prev = prev;
  extra_.reset();
  CountTarpitRetransmissions(sock.native_handle(), m.tarpitted());
  asio::error_code ec;
  sock.close(ec);
  base::g_open_connections.fetch_sub(1, std::memory_order_relaxed);
  s.EndSession(Id().data(), m);
  delete this;
}

// "674a1f3b9c2e-0-2a": this instance (its start time in Unix seconds, then
// 16 random bits, both hex), the worker and the worker's serial. The
// instance part sorts by start time and differs between restarts and
// between instances started in the same second (but for a 1 in 65536
// chance), so ids from several instances or runs never repeat in a log.
std::array<char, 40> SessionId(int worker, uint32_t serial) {
  static const uint64_t instance = [] {
    std::random_device entropy;
    uint64_t start = uint64_t(std::time(nullptr)) & 0xffffffff;
    return (start << 16) | (entropy() & 0xffff);
  }();
  std::array<char, 40> id;
  std::snprintf(id.data(), id.size(), "%012llx-%x-%x",
                static_cast<unsigned long long>(instance), worker,
                unsigned(serial));
  return id;
}

void Server::Impl::EndSession(const char* id, const conn::Connection& m) {
  peer::SessionSummary rec = m.Summary();
  const Live* live = current.load(std::memory_order_acquire);
  if (live->tarpit.enabled || rec.tarpitted) host.cache.Update(rec);
  if (p.sink) p.sink->Record(rec);
  if (live->log_sessions) {
    base::LogLine(base::LogLevel::kInfo, "session")
        .Kv("session", id)
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
        .Kv("tarpit", rec.tarpitted ? "yes" : "no")
        .Kv("delay", rec.delay_seconds)
        .Kv("stuttered", unsigned(rec.replies_stuttered))
        .Kv("slow_reads", unsigned(rec.slow_reads))
        .Kv("close", peer::CloseReasonName(rec.close_reason));
  }
}

}  // namespace net
