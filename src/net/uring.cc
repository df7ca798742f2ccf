// The io_uring executor: one ring per worker thread carries out the commands
// of its connection machines, beside the Asio executor of session.cc (the
// fallback). What it changes is only how the I/O is done:
//
//  - every operation is a submission; all of a loop turn's submissions go
//    to the kernel in one io_uring_enter, which also waits for completions;
//  - reads take a buffer from the worker's provided-buffer ring when data
//    arrives (IOSQE_BUFFER_SELECT), and the buffer goes back as soon as the
//    machine has consumed it: an idle connection owns no read buffer;
//  - timers (tarpit delays, the sweeper) are ring timeouts;
//  - TLS is OpenSSL over memory BIOs, its ciphertext carried by the same
//    reads and sends as plain TCP.
//
// As in session.cc, exactly one operation per connection is pending at a
// time, and the sweeper or shutdown aborts it with an async cancel; the
// completion then delivers OnAbort. A completion's user_data is the
// session (or accept slot, or worker event) with a tag in the low bits.
//
// A send the machine wants "now" (wait false) is one non-blocking send(2)
// at once, as in session.cc: its bytes live in the thread's reply buffer,
// which the next machine reuses, so it cannot wait for a later submission.
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/ssl.hpp>
#include <cstring>
#include <deque>

#include "base/log.h"
#include "base/metrics.h"
#include "net/server_impl.h"

namespace net {

using base::Count;
using base::Counter;
using Kind = conn::Command::Kind;

namespace {

constexpr unsigned kRingEntries = 1024;
// Provided receive buffers per worker. Small reads touch only the first
// page of a buffer, so the pool's resident size is about kBuffers pages
// plus whatever large reads have used.
constexpr unsigned kBuffers = 128;  // a power of two
constexpr size_t kBufferSize = 16 * 1024;
constexpr uint16_t kGroup = 0;
constexpr int kAcceptsPerListener = 8;  // accepts in flight per listener

enum Tag : uint64_t {
  kIgnore = 0,  // cancel results
  kSession = 1,
  kAccept = 2,
  kWake = 3,   // the eventfd: Stop()
  kSweep = 4,  // the sweeper's timer
  kPause = 5,  // accepting resumes
};
constexpr uint64_t kTagMask = 7;

uint64_t Data(const void* p, Tag t) { return uint64_t(uintptr_t(p)) | t; }

__kernel_timespec Spec(base::Duration d) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  if (ns < 0) ns = 0;
  return __kernel_timespec{ns / 1000000000, ns % 1000000000};
}

base::IpAddress IpOf(const sockaddr_storage& a, uint16_t* port) {
  if (a.ss_family == AF_INET6) {
    const auto& s6 = reinterpret_cast<const sockaddr_in6&>(a);
    *port = ntohs(s6.sin6_port);
    std::array<uint8_t, 16> b;
    std::memcpy(b.data(), &s6.sin6_addr, 16);
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0,    0,
                                        0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b.data(), kMapped, 12) == 0) {
      uint32_t v4;
      std::memcpy(&v4, b.data() + 12, 4);
      return base::IpAddress::FromV4(ntohl(v4));
    }
    return base::IpAddress::FromV6(b);
  }
  const auto& s4 = reinterpret_cast<const sockaddr_in&>(a);
  *port = ntohs(s4.sin_port);
  return base::IpAddress::FromV4(ntohl(s4.sin_addr.s_addr));
}

}  // namespace

struct USession;

struct AcceptSlot {
  int fd = -1;
  bool pending = false;  // submitted, not completed
  socklen_t len = 0;
  sockaddr_storage addr{};
};

struct Uring {
  Worker* w = nullptr;
  io_uring ring{};
  bool ring_ok = false;
  io_uring_buf_ring* br = nullptr;
  char* buffers = nullptr;
  size_t br_bytes = 0;
  int wake_fd = -1;
  uint64_t wake_value = 0;
  __kernel_timespec sweep_spec{}, pause_spec{};
  std::deque<__kernel_timespec> specs;  // timer specs until submitted
  std::vector<std::unique_ptr<AcceptSlot>> slots;
  int accepts_pending = 0;
  bool pause_armed = false;
  USession* head = nullptr;  // sentinel's links (see Link)
  USession* tail = nullptr;
  int64_t sessions = 0;

  ~Uring() {
    if (ring_ok) io_uring_queue_exit(&ring);
    if (br) munmap(br, br_bytes);
    if (buffers) munmap(buffers, size_t(kBuffers) * kBufferSize);
    if (wake_fd >= 0) close(wake_fd);
  }
  io_uring_sqe* Sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    while (s == nullptr) {  // the queue is full: hand it over, go on
      io_uring_submit(&ring);
      s = io_uring_get_sqe(&ring);
    }
    return s;
  }
  char* Buffer(unsigned bid) { return buffers + size_t(bid) * kBufferSize; }
  void Recycle(unsigned bid) {
    io_uring_buf_ring_add(br, Buffer(bid), kBufferSize, uint16_t(bid),
                          io_uring_buf_ring_mask(kBuffers), 0);
    io_uring_buf_ring_advance(br, 1);
  }
  void Cancel(uint64_t data) {
    io_uring_sqe* s = Sqe();
    io_uring_prep_cancel64(s, data, 0);
    io_uring_sqe_set_data64(s, kIgnore);
  }
};

// One connection: its machine, and the one operation it has pending.
struct USession {
  enum class Op : uint8_t {
    kNone,
    kRecv,
    kSend,
    kSendNow,  // one non-blocking attempt (MSG_DONTWAIT)
    kTimer,
    kTlsRecv,
    kTlsFlush
  };
  // What follows a TLS read or flush.
  enum class Then : uint8_t { kHandshake, kRead, kSent };
  struct Tls {
    explicit Tls(SSL_CTX* ctx) : ssl(SSL_new(ctx)) {
      BIO* r = BIO_new(BIO_s_mem());
      BIO* w = BIO_new(BIO_s_mem());
      rbio = r;
      wbio = w;
      SSL_set_bio(ssl, r, w);  // ssl owns both
      SSL_set_accept_state(ssl);
    }
    ~Tls() { SSL_free(ssl); }
    SSL* ssl;
    BIO* rbio;
    BIO* wbio;
    std::string out;  // ciphertext being sent
    size_t out_sent = 0;
    size_t plain = 0;  // plaintext bytes of the send in progress
    Then then = Then::kHandshake;
  };

  USession(Server::Impl& s, Worker& w, Uring& u, int fd)
      : s(s), w(w), u(u), m(&w.env), fd(fd) {}

  void Run(conn::Command c);
  void OnCompletion(int res, unsigned flags);
  void Abort(peer::CloseReason why) {
    if (aborted) return;
    aborted = true;
    abort_reason = why;
    if (op != Op::kNone) u.Cancel(Data(this, kSession));
  }
  bool InputWaiting() const {
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) == 0 && n > 0) return true;
    return tls && (SSL_pending(tls->ssl) > 0 || BIO_ctrl_pending(tls->rbio));
  }
  void SubmitRecv(Op o, size_t want);
  void SubmitSend(Op o, std::string_view data);
  void TlsHandshake();
  void TlsRead();
  void TlsSend(std::string_view data);
  // Sends what OpenSSL has written; true if a send is now pending.
  bool TlsFlush(Then then);
  void TlsContinue();
  void Finish();

  USession* prev = nullptr;
  USession* next = nullptr;
  Server::Impl& s;
  Worker& w;
  Uring& u;
  conn::Connection m;
  std::unique_ptr<Tls> tls;
  std::string_view sending;  // a send waiting for room
  int fd;
  uint32_t serial = 0;
  uint32_t want = 0;  // the size of the read waiting for input
  Op op = Op::kNone;
  bool aborted = false;
  bool peek = false;
  peer::CloseReason abort_reason = peer::CloseReason::kIdleTimeout;
};

void USession::SubmitRecv(Op o, size_t n) {
  op = o;
  io_uring_sqe* q = u.Sqe();
  io_uring_prep_recv(q, fd, nullptr, std::min(n, kBufferSize), 0);
  q->flags |= IOSQE_BUFFER_SELECT;
  q->buf_group = kGroup;
  io_uring_sqe_set_data64(q, Data(this, kSession));
}

void USession::SubmitSend(Op o, std::string_view data) {
  op = o;
  io_uring_sqe* q = u.Sqe();
  io_uring_prep_send(q, fd, data.data(), data.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(q, Data(this, kSession));
}

void USession::Run(conn::Command c) {
  for (;;) {
    switch (c.kind) {
      case Kind::kRead:
        if (c.window > 0) {
          int win = c.window;
          setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &win, sizeof win);
          setsockopt(fd, IPPROTO_TCP, TCP_WINDOW_CLAMP, &win, sizeof win);
        }
        want = uint32_t(std::min(c.bytes, kReadBuffer));
        if (tls) return TlsRead();
        return SubmitRecv(Op::kRecv, want);
      case Kind::kSend:
        if (tls) return TlsSend(c.data);
        if (!c.wait && c.stable) {  // one attempt, batched with the turn's
          sending = c.data;
          op = Op::kSendNow;
          io_uring_sqe* q = u.Sqe();
          io_uring_prep_send(q, fd, sending.data(), sending.size(),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
          io_uring_sqe_set_data64(q, Data(this, kSession));
          return;
        }
        if (!c.wait) {
          ssize_t n;
          do {
            n = ::send(fd, c.data.data(), c.data.size(),
                       MSG_DONTWAIT | MSG_NOSIGNAL);
          } while (n < 0 && errno == EINTR);
          if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            c = m.OnError();
          } else {
            c = m.OnSent(n < 0 ? 0 : size_t(n));
          }
          continue;
        }
        sending = c.data;
        return SubmitSend(Op::kSend, sending);
      case Kind::kWait: {
        if (c.delay <= base::Duration::zero()) {
          c = m.OnTimer(c.peek && InputWaiting());
          continue;
        }
        peek = c.peek;
        op = Op::kTimer;
        u.specs.push_back(Spec(c.delay));
        io_uring_sqe* q = u.Sqe();
        io_uring_prep_timeout(q, &u.specs.back(), 0, 0);
        io_uring_sqe_set_data64(q, Data(this, kSession));
        return;
      }
      case Kind::kStartTls:
        tls = std::make_unique<Tls>(s.p.tls->native_handle());
        return TlsHandshake();
      case Kind::kHalfClose:
        c = m.OnHalfClosed(::shutdown(fd, SHUT_WR) == 0);
        continue;
      case Kind::kClose:
        return Finish();
    }
  }
}

void USession::OnCompletion(int res, unsigned flags) {
  Op done = op;
  op = Op::kNone;
  bool has_buffer = flags & IORING_CQE_F_BUFFER;
  unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
  if (aborted) {
    if (has_buffer) u.Recycle(bid);
    aborted = false;
    return Run(m.OnAbort(abort_reason));
  }
  switch (done) {
    case Op::kRecv:
    case Op::kTlsRecv: {
      if (res == -ENOBUFS) {  // the pool ran dry this turn: try again
        return SubmitRecv(done, done == Op::kRecv ? want : kBufferSize);
      }
      if (res <= 0) {
        if (has_buffer) u.Recycle(bid);
        if (done == Op::kTlsRecv && tls->then == Then::kHandshake) {
          return Run(m.OnTlsDone(false));
        }
        if (res == 0 || res == -ECONNRESET || done == Op::kTlsRecv) {
          return Run(m.OnEof());
        }
        return Run(m.OnError());
      }
      std::string_view bytes(u.Buffer(bid), size_t(res));
      if (done == Op::kRecv) {
        conn::Command c = m.OnRead(bytes);
        u.Recycle(bid);
        return Run(c);
      }
      BIO_write(tls->rbio, bytes.data(), int(bytes.size()));
      u.Recycle(bid);
      return TlsContinue();
    }
    case Op::kSendNow:
      if (res == -EAGAIN || res == -EWOULDBLOCK) return Run(m.OnSent(0));
      [[fallthrough]];
    case Op::kSend:
      if (res < 0) return Run(m.OnError());
      return Run(m.OnSent(size_t(res)));
    case Op::kTimer:
      return Run(m.OnTimer(peek && InputWaiting()));
    case Op::kTlsFlush:
      if (res <= 0) {
        if (tls->then == Then::kHandshake) return Run(m.OnTlsDone(false));
        return Run(m.OnError());
      }
      tls->out_sent += size_t(res);
      if (tls->out_sent < tls->out.size()) {
        return SubmitSend(Op::kTlsFlush,
                          std::string_view(tls->out).substr(tls->out_sent));
      }
      tls->out = std::string();  // an idle connection keeps no buffer
      tls->out_sent = 0;
      return TlsContinue();
    case Op::kNone:
      return;  // not ours (a completion after the abort's)
  }
}

void USession::TlsContinue() {
  switch (tls->then) {
    case Then::kHandshake:
      return TlsHandshake();
    case Then::kRead:
      return TlsRead();
    case Then::kSent:
      return Run(m.OnSent(tls->plain));
  }
}

bool USession::TlsFlush(Then then) {
  size_t n = BIO_ctrl_pending(tls->wbio);
  if (n == 0) return false;
  tls->then = then;
  tls->out.resize(n);
  BIO_read(tls->wbio, tls->out.data(), int(n));
  tls->out_sent = 0;
  SubmitSend(Op::kTlsFlush, tls->out);
  return true;
}

void USession::TlsHandshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(tls->ssl);
  if (TlsFlush(Then::kHandshake)) return;  // our flight (or alert) first
  if (r == 1) return Run(m.OnTlsDone(true));
  if (SSL_get_error(tls->ssl, r) == SSL_ERROR_WANT_READ) {
    tls->then = Then::kHandshake;
    return SubmitRecv(Op::kTlsRecv, kBufferSize);
  }
  Run(m.OnTlsDone(false));
}

void USession::TlsRead() {
  ERR_clear_error();
  int r = SSL_read(tls->ssl, w.read_buf.get(), int(want));
  if (r > 0) return Run(m.OnRead(std::string_view(w.read_buf.get(), r)));
  if (SSL_get_error(tls->ssl, r) == SSL_ERROR_WANT_READ) {
    if (TlsFlush(Then::kRead)) return;  // e.g. session tickets
    tls->then = Then::kRead;
    return SubmitRecv(Op::kTlsRecv, kBufferSize);
  }
  Run(m.OnEof());  // close_notify, or a broken stream
}

void USession::TlsSend(std::string_view data) {
  ERR_clear_error();
  size_t n = 0;
  // A memory BIO takes everything: the plaintext is encrypted at once.
  if (!data.empty() &&
      SSL_write_ex(tls->ssl, data.data(), data.size(), &n) != 1) {
    return Run(m.OnError());
  }
  tls->plain = n;
  if (TlsFlush(Then::kSent)) return;
  Run(m.OnSent(n));
}

void USession::Finish() {
  prev->next = next;
  next->prev = prev;
  --u.sessions;
  tls.reset();
  ::close(fd);
  base::g_open_connections.fetch_sub(1, std::memory_order_relaxed);
  s.EndSession(SessionId(w.index, serial).data(), m);
  delete this;
}

// --- The worker --------------------------------------------------------------

// The worker's loop: accepts, the sweeper, shutdown, and the dispatch of
// completions. head is the sentinel of the list of open sessions (a real,
// never started session: the list links through prev/next only).
struct UringLoop {
  Server::Impl& s;
  Worker& w;
  Uring& u;
  USession& head;

  void SubmitAccept(AcceptSlot& a) {
    a.len = sizeof a.addr;
    a.pending = true;
    ++u.accepts_pending;
    io_uring_sqe* q = u.Sqe();
    io_uring_prep_accept(q, a.fd, reinterpret_cast<sockaddr*>(&a.addr), &a.len,
                         SOCK_CLOEXEC);
    io_uring_sqe_set_data64(q, Data(&a, kAccept));
  }
  void ArmSweep() {
    u.sweep_spec = Spec(s.sweep_period);
    io_uring_sqe* q = u.Sqe();
    io_uring_prep_timeout(q, &u.sweep_spec, 0, 0);
    io_uring_sqe_set_data64(q, Data(&u, kSweep));
  }
  void ArmWake() {
    io_uring_sqe* q = u.Sqe();
    io_uring_prep_read(q, u.wake_fd, &u.wake_value, sizeof u.wake_value, 0);
    io_uring_sqe_set_data64(q, Data(&u, kWake));
  }
  void Pause(std::chrono::milliseconds d) {
    if (u.pause_armed) return;
    u.pause_armed = true;
    u.pause_spec = Spec(d);
    io_uring_sqe* q = u.Sqe();
    io_uring_prep_timeout(q, &u.pause_spec, 0, 0);
    io_uring_sqe_set_data64(q, Data(&u, kPause));
  }
  bool OutOfDescriptors() const {
    const int64_t reserve = s.p.server.fd_reserve + 16;
    return s.gauges.open.load(std::memory_order_relaxed) + reserve >=
           s.fd_limit;
  }
  // Accepts again on a slot, unless descriptors are short (then later).
  void Rearm(AcceptSlot& a) {
    if (w.stopping) return;
    if (OutOfDescriptors()) {
      Count(Counter::kAcceptPauses);
      return Pause(std::chrono::milliseconds(100));
    }
    SubmitAccept(a);
  }
  void OnAccept(AcceptSlot& a, int res) {
    a.pending = false;
    --u.accepts_pending;
    if (res >= 0) {
      if (w.stopping) {
        ::close(res);
        return;
      }
      Count(Counter::kConnectionsAccepted);
      Start(res, a.addr);
      return Rearm(a);
    }
    if (res == -ECANCELED || w.stopping) return;
    Count(Counter::kAcceptErrors);
    bool no_fds =
        res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM;
    if (no_fds) Count(Counter::kAcceptPauses);
    base::LogLine(base::LogLevel::kWarning, "accept_error")
        .Kv("error", std::strerror(-res));
    // A failed accept backs off and carries on; it never ends the server.
    Pause(std::chrono::milliseconds(no_fds ? 100 : 10));
  }
  void Start(int fd, const sockaddr_storage& addr) {
    auto* se = new USession(s, w, u, fd);
    se->serial = uint32_t(++w.next_session);
    se->prev = head.prev;
    se->next = &head;
    head.prev->next = se;
    head.prev = se;
    ++u.sessions;
    base::g_open_connections.fetch_add(1, std::memory_order_relaxed);
    uint16_t port = 0;
    base::IpAddress client = IpOf(addr, &port);
    se->Run(se->m.Start(client, port, s.Trusted(client), w.rng.Next()));
  }
  void Sweep() {
    auto now = s.p.clock->Now();
    for (USession* c = head.next; c != &head; c = c->next) {
      if (c->aborted) continue;
      if (auto why = c->m.Expired(now)) c->Abort(*why);
    }
  }
  void Stop() {
    w.stopping = true;
    for (auto& a : u.slots) {
      if (a->pending) u.Cancel(Data(a.get(), kAccept));
    }
    for (USession* c = head.next; c != &head; c = c->next) {
      c->Abort(peer::CloseReason::kShutdown);
    }
  }
  void Dispatch(const io_uring_cqe* cqe) {
    uint64_t d = io_uring_cqe_get_data64(cqe);
    void* p = reinterpret_cast<void*>(uintptr_t(d & ~kTagMask));
    switch (Tag(d & kTagMask)) {
      case kSession:
        return static_cast<USession*>(p)->OnCompletion(cqe->res, cqe->flags);
      case kAccept:
        return OnAccept(*static_cast<AcceptSlot*>(p), cqe->res);
      case kWake:
        if (!w.stopping) Stop();
        return;
      case kSweep:
        if (w.stopping) return;
        Sweep();
        return ArmSweep();
      case kPause:
        u.pause_armed = false;
        for (auto& a : u.slots) {
          if (!a->pending) Rearm(*a);
        }
        return;
      case kIgnore:
      default:
        return;
    }
  }
};

bool Server::Impl::MakeUring(Worker& w, std::string* why) {
  auto* u = new Uring;
  w.uring =
      std::unique_ptr<Uring, void (*)(Uring*)>(u, [](Uring* x) { delete x; });
  u->w = &w;
  io_uring_params params{};
  params.flags = IORING_SETUP_SUBMIT_ALL;
  params.cq_entries = kRingEntries * 8;
  params.flags |= IORING_SETUP_CQSIZE;
  int e = io_uring_queue_init_params(kRingEntries, &u->ring, &params);
  if (e < 0) {
    *why = std::string("io_uring_setup: ") + std::strerror(-e);
    return false;
  }
  u->ring_ok = true;
  long page = sysconf(_SC_PAGESIZE);
  u->br_bytes = (kBuffers * sizeof(io_uring_buf) + page - 1) / page * page;
  void* ring_mem = mmap(nullptr, u->br_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* bufs =
      mmap(nullptr, size_t(kBuffers) * kBufferSize, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ring_mem == MAP_FAILED || bufs == MAP_FAILED) {
    *why = "cannot map the receive buffers";
    if (ring_mem != MAP_FAILED) munmap(ring_mem, u->br_bytes);
    if (bufs != MAP_FAILED) munmap(bufs, size_t(kBuffers) * kBufferSize);
    return false;
  }
  u->br = static_cast<io_uring_buf_ring*>(ring_mem);
  u->buffers = static_cast<char*>(bufs);
  io_uring_buf_ring_init(u->br);
  io_uring_buf_reg reg{};
  reg.ring_addr = uintptr_t(u->br);
  reg.ring_entries = kBuffers;
  reg.bgid = kGroup;
  e = io_uring_register_buf_ring(&u->ring, &reg, 0);
  if (e < 0) {
    *why =
        std::string("provided buffer ring (Linux 5.19+): ") + std::strerror(-e);
    return false;
  }
  for (unsigned i = 0; i < kBuffers; ++i) {
    io_uring_buf_ring_add(u->br, u->Buffer(i), kBufferSize, uint16_t(i),
                          io_uring_buf_ring_mask(kBuffers), int(i));
  }
  io_uring_buf_ring_advance(u->br, int(kBuffers));
  u->wake_fd = eventfd(0, EFD_CLOEXEC);
  if (u->wake_fd < 0) {
    *why = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  return true;
}

void Server::Impl::WakeUring(Worker& w) {
  uint64_t one = 1;
  ssize_t r = ::write(w.uring->wake_fd, &one, sizeof one);
  (void)r;  // a full counter still wakes the loop
}

void Server::Impl::RunUring(Worker& w) {
  Uring& u = *w.uring;
  // The list's sentinel; never started, it holds no descriptor.
  USession head(*this, w, u, -1);
  head.prev = head.next = &head;
  UringLoop loop{*this, w, u, head};
  for (auto& acc : w.acceptors) {
    int fd = acc->native_handle();
    // Blocking listeners: the ring then waits for a connection instead of
    // failing the accept with EAGAIN.
    acc->non_blocking(false);
    for (int i = 0; i < kAcceptsPerListener; ++i) {
      auto a = std::make_unique<AcceptSlot>();
      a->fd = fd;
      u.slots.push_back(std::move(a));
    }
  }
  for (auto& a : u.slots) loop.SubmitAccept(*a);
  loop.ArmWake();
  loop.ArmSweep();
  if (stopping.load()) loop.Stop();
  for (;;) {
    if (w.stopping && head.next == &head && u.accepts_pending == 0) break;
    int e = io_uring_submit_and_wait(&u.ring, 1);
    u.specs.clear();  // the kernel has copied them
    if (e < 0 && e != -EINTR && e != -EBUSY && e != -EAGAIN) {
      base::LogLine(base::LogLevel::kError, "uring_error")
          .Kv("error", std::strerror(-e));
      break;
    }
    unsigned seen = 0, at;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&u.ring, at, cqe) {
      ++seen;
      loop.Dispatch(cqe);
    }
    io_uring_cq_advance(&u.ring, seen);
  }
}

std::string ProbeUring() {
  io_uring ring;
  int e = io_uring_queue_init(8, &ring, 0);
  if (e < 0) {
    std::string why = std::string("io_uring_setup: ") + std::strerror(-e);
    if (e == -EPERM) why += " (kernel.io_uring_disabled, or seccomp)";
    if (e == -ENOSYS) why += " (kernel without io_uring, or seccomp)";
    return why;
  }
  std::string why;
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  if (probe == nullptr) {
    why = "cannot probe io_uring opcodes (kernel before 5.6)";
  } else {
    const std::pair<int, const char*> ops[] = {
        {IORING_OP_ACCEPT, "accept"},       {IORING_OP_RECV, "recv"},
        {IORING_OP_SEND, "send"},           {IORING_OP_TIMEOUT, "timeout"},
        {IORING_OP_ASYNC_CANCEL, "cancel"}, {IORING_OP_READ, "read"}};
    for (auto [op, name] : ops) {
      if (!io_uring_opcode_supported(probe, op)) {
        why = std::string("io_uring lacks ") + name;
        break;
      }
    }
    io_uring_free_probe(probe);
  }
  if (why.empty() && !(ring.features & IORING_FEAT_FAST_POLL)) {
    why = "io_uring without fast poll (kernel before 5.7)";
  }
  io_uring_queue_exit(&ring);
  return why;
}

}  // namespace net
