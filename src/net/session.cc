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
#include <sys/socket.h>

#include <asio/ssl.hpp>

#include "base/log.h"
#include "base/metrics.h"
#include "net/server_impl.h"

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

using TlsStream = asio::ssl::stream<Socket&>;
constexpr size_t kTlsBuffer = 16 * 1024;

}  // namespace

struct Session {
  Session(Server::Impl& s, Worker& w, Socket sock)
      : s(s), w(w), sock(std::move(sock)), m(&w.env) {}

  void Run(conn::Command c);
  void DoRead();
  void DoSend(std::string_view data, bool wait);
  void Finish();
  // The pending operation ended: its result, or the abort the sweeper or
  // shutdown ordered meanwhile.
  template <typename F>
  void Complete(F&& result) {
    if (conn.aborted) {
      conn.aborted = false;
      return Run(m.OnAbort(conn.abort_reason));
    }
    Run(result());
  }
  std::array<char, 24> Id() const { return SessionId(w.index, serial); }

  Server::Impl& s;
  Worker& w;
  Socket sock;
  Conn conn;
  conn::Connection m;
  std::unique_ptr<Timer> timer;  // made at the first wait (the tarpit's)
  struct Tls {
    Tls(Socket& sock, asio::ssl::context& ctx) : stream(sock, ctx) {}
    TlsStream stream;
    char buf[kTlsBuffer];
  };
  std::unique_ptr<Tls> tls;
  std::string_view sending;  // the bytes of a send waiting for room
  uint32_t want = 0;         // the size of the read waiting for input
  uint32_t serial = 0;
  bool peek = false;  // the timer's wait asks whether input is waiting
};

void Server::Impl::StartSession(Worker& w, Socket sock,
                                const tcp::endpoint& peer) {
  auto* se = new Session(*this, w, std::move(sock));
  se->serial = uint32_t(++w.next_session);
  se->conn.session = se;
  // Link into the worker's list for the sweeper.
  se->conn.prev = w.head.prev;
  se->conn.next = &w.head;
  w.head.prev->next = &se->conn;
  w.head.prev = &se->conn;
  base::g_open_connections.fetch_add(1, std::memory_order_relaxed);
  base::IpAddress client = ToIp(peer.address());
  se->Run(se->m.Start(client, peer.port(), Trusted(client), w.rng.Next()));
}

std::optional<peer::CloseReason> Server::Impl::SessionExpired(
    Conn* c, base::SteadyTime now) {
  return c->session->m.Expired(now);
}

void Server::Impl::AbortSession(Conn* c, peer::CloseReason why) {
  c->aborted = true;
  c->abort_reason = why;
  asio::error_code ignored;
  c->session->sock.cancel(ignored);
  if (c->session->timer) c->session->timer->cancel();
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
        want = uint32_t(std::min(c.bytes, kReadBuffer));
        return DoRead();
      case Kind::kSend:
        if (!c.wait && !tls) {
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
        return DoSend(c.data, true);
      case Kind::kWait:
        if (c.delay <= base::Duration::zero()) {
          asio::error_code ec;
          c = m.OnTimer(c.peek && sock.available(ec) > 0);
          continue;
        }
        if (!timer) timer = std::make_unique<Timer>(w.io.get_executor());
        peek = c.peek;
        timer->expires_after(c.delay);
        timer->async_wait(Bind([this](const asio::error_code&) {
          Complete([this] {
            asio::error_code ec;
            return m.OnTimer(peek && sock.available(ec) > 0);
          });
        }));
        return;
      case Kind::kStartTls:
        tls = std::make_unique<Tls>(sock, *s.p.tls);
        tls->stream.async_handshake(
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

void Session::DoRead() {
  if (tls) {
    tls->stream.async_read_some(
        asio::buffer(tls->buf, std::min<size_t>(want, kTlsBuffer)),
        Bind([this](const asio::error_code& ec, size_t n) {
          Complete([&] {
            if (ec) return m.OnEof();
            return m.OnRead(std::string_view(tls->buf, n));
          });
        }));
    return;
  }
  sock.async_wait(
      Socket::wait_read, Bind([this](const asio::error_code& ec) {
        Complete([&] {
          if (ec) return m.OnError();
          size_t n = 0;
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

void Session::DoSend(std::string_view data, bool) {
  sending = data;
  if (tls) {
    tls->stream.async_write_some(
        asio::buffer(sending.data(), sending.size()),
        Bind([this](const asio::error_code& ec, size_t n) {
          Complete([&] { return ec ? m.OnError() : m.OnSent(n); });
        }));
    return;
  }
  sock.async_wait(Socket::wait_write, Bind([this](const asio::error_code& ec) {
                    Complete([&] {
                      if (ec) return m.OnError();
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
  conn.prev->next = conn.next;
  conn.next->prev = conn.prev;
  tls.reset();
  asio::error_code ec;
  sock.close(ec);
  base::g_open_connections.fetch_sub(1, std::memory_order_relaxed);
  s.EndSession(Id().data(), m);
  delete this;
}

std::array<char, 24> SessionId(int worker, uint32_t serial) {
  std::array<char, 24> id;
  std::snprintf(id.data(), id.size(), "%x%06x", worker,
                unsigned(serial & 0xffffff));
  return id;
}

void Server::Impl::EndSession(const char* id, const conn::Connection& m) {
  peer::SessionSummary rec = m.Summary();
  if (p.tarpit.enabled) host.cache.Update(rec);
  if (p.sink) p.sink->Record(rec);
  if (p.log_sessions) {
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
        .Kv("close", peer::CloseReasonName(rec.close_reason));
  }
}

}  // namespace net
