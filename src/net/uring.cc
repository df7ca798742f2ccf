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
// A send the machine wants "now" (wait false) is a MSG_DONTWAIT send queued
// with the loop turn's other submissions; bytes from the thread's reply
// buffer (which the next machine reuses) are copied to a per-turn stash
// first (Connection::SendCopied), the tarpit's own copies (stable) are not.
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <asio/ssl.hpp>

#include "base/log.h"
#include "base/metrics.h"
#include "net/tcp_retrans.h"
#include "net/uring_impl.h"

namespace net {

using Kind = conn::Command::Kind;

void USession::SubmitRecv(Op o, size_t n, bool big_ok) {
  op = o;
  // Bulk input (the last read filled a small buffer) takes a large one.
  group = big_ok && more && n > kBufferSize && u.pool[1].br ? 1 : 0;
  io_uring_sqe* q = u.Sqe();
  io_uring_prep_recv(q, fd, nullptr, std::min(n, u.pool[group].size), 0);
  // The client usually has yet to answer what we just sent: wait for data
  // first instead of a recv that fails first (unless the last read filled
  // its buffer, when more is likely queued).
  if (!more) q->ioprio |= IORING_RECVSEND_POLL_FIRST;
  q->flags |= IOSQE_BUFFER_SELECT;
  q->buf_group = group;
  io_uring_sqe_set_data64(q, Key());
}

void USession::SubmitSend(Op o, std::string_view data) {
  op = o;
  io_uring_sqe* q = u.Sqe();
  io_uring_prep_send(q, fd, data.data(), data.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(q, Key());
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
        if (tls) return TlsRead();
        // An idle session waits as a packed record (not when the last read
        // filled its buffer: more input is likely queued).
        if (!more && !aborted && m.Packable()) return Park();
        return SubmitRecv(Op::kRecv, Want());
      case Kind::kSend:
        if (tls) return TlsSend(c.data);
        if (!c.wait && c.stable) {  // one attempt, batched with the turn's
          op = Op::kSendNow;
          io_uring_sqe* q = u.Sqe();
          io_uring_prep_send(q, fd, c.data.data(), c.data.size(),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
          io_uring_sqe_set_data64(q, Key());
          return;
        }
        if (!c.wait) {  // copied, and queued with the turn's writes
          stashed = uint8_t(u.turn & 1);
          std::string_view copy = u.stash[stashed].Put(c.data);
          m.SendCopied(copy);
          op = Op::kSendNow;
          io_uring_sqe* q = u.Sqe();
          io_uring_prep_send(q, fd, copy.data(), copy.size(),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
          io_uring_sqe_set_data64(q, Key());
          return;
        }
        return SubmitSend(Op::kSend, c.data);
      case Kind::kWait: {
        if (c.delay <= base::Duration::zero()) {
          c = m.OnTimer(c.peek && InputWaiting());
          continue;
        }
        peek = c.peek;
        if (c.delay < kWatchPeerFrom) {  // a short wait: the worker's
          op = Op::kTick;
          timer = u.timers.emplace(
              std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::nanoseconds>(c.delay),
              this);
          return;
        }
        op = Op::kTimer;
        u.specs.push_back(Spec(c.delay));
        // A long wait is a poll for the peer's departure (FIN: POLLRDHUP;
        // reset: POLLERR/POLLHUP, always reported) linked to a timeout of
        // the delay: one completion either way, the poll's. Its result is
        // -ECANCELED when the delay ran out, the events when the peer left
        // (the timeout then ends cancelled, ignored). So a client that
        // leaves a tarpit frees its slot at once. Input arriving meanwhile
        // does not end the wait.
        u.Reserve(2);  // a link cut by a submission would lose its timeout
        io_uring_sqe* q = u.Sqe();
        io_uring_prep_poll_add(q, fd, POLLRDHUP);
        io_uring_sqe_set_data64(q, Key());
        q->flags |= IOSQE_IO_LINK;
        io_uring_sqe* t = u.Sqe();
        io_uring_prep_link_timeout(t, &u.specs.back(), 0);
        io_uring_sqe_set_data64(t, kIgnore);
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
  Pool& pool = u.pool[group];
  if (stashed != kNoStash) {
    --u.stash[stashed].pending;
    stashed = kNoStash;
  }
  if (aborted) {
    if (has_buffer) pool.Recycle(bid);
    aborted = false;
    return Run(m.OnAbort(abort_reason));
  }
  switch (done) {
    case Op::kRecv:
    case Op::kTlsRecv: {
      if (res == -ENOBUFS) {  // the pool ran dry this turn: try again
        base::Count(base::Counter::kRecvNoBuffers);
        more = true;  // (in the small pool if the large one was dry)
        return SubmitRecv(done, done == Op::kRecv ? Want() : kBufferSize,
                          group == 0);
      }
      if (res <= 0) {
        if (has_buffer) pool.Recycle(bid);
        if (done == Op::kTlsRecv && tls->then == Then::kHandshake) {
          return Run(m.OnTlsDone(false));
        }
        if (res == 0 || res == -ECONNRESET || done == Op::kTlsRecv) {
          return Run(m.OnEof());
        }
        return Run(m.OnError());
      }
      more = size_t(res) >= kBufferSize;
      std::string_view bytes(pool.Buffer(bid), size_t(res));
      if (done == Op::kRecv) {
        conn::Command c = m.OnRead(bytes);
        pool.Recycle(bid);
        return Run(c);
      }
      BIO_write(tls->rbio, bytes.data(), int(bytes.size()));
      pool.Recycle(bid);
      return TlsContinue();
    }
    case Op::kSendNow:
      if (res == -EAGAIN || res == -EWOULDBLOCK) return Run(m.OnSent(0));
      [[fallthrough]];
    case Op::kSend:
      if (res < 0) return Run(m.OnError());
      return Run(m.OnSent(size_t(res)));
    case Op::kTick:
    case Op::kTimer:
      // The peer left (see Run's kWait): the machine counts the part of
      // the wait served and closes. (A plain timeout's result is -ETIME.)
      if (res > 0) return Run(m.OnEof());
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
  int r = SSL_read(tls->ssl, u.w->read_buf.get(), int(Want()));
  if (r > 0) return Run(m.OnRead(std::string_view(u.w->read_buf.get(), r)));
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

void USession::Park() {
  base::Count(base::Counter::kUringSessionsParked);
  size_t n = m.PackedSize();
  auto* r = new (::operator new(UParked::SizeFor(n))) UParked;
  r->fd = fd;
  r->serial = serial;
  m.Pack(r->bytes());
  // The record takes this session's place: out of the sessions' list, at
  // the end of the parked ones.
  prev->next = next;
  next->prev = prev;
  r->prev = u.parked.prev;
  r->next = &u.parked;
  u.parked.prev->next = r;
  u.parked.prev = r;
  // As SubmitRecv for a read that waits for the client (small pool).
  io_uring_sqe* q = u.Sqe();
  io_uring_prep_recv(q, fd, nullptr, std::min(Want(), u.pool[0].size), 0);
  q->ioprio |= IORING_RECVSEND_POLL_FIRST;
  q->flags |= IOSQE_BUFFER_SELECT;
  q->buf_group = 0;
  io_uring_sqe_set_data64(q, Data(r, kParked, r->serial));
  delete this;
}

void USession::Finish() {
  prev->next = next;
  next->prev = prev;
  --u.sessions;
  tls.reset();
  CountTarpitRetransmissions(fd, m.tarpitted());
  ::close(fd);
  base::g_open_connections.fetch_sub(1, std::memory_order_relaxed);
  s.EndSession(SessionId(u.w->index, serial).data(), m);
  delete this;
}

}  // namespace net
