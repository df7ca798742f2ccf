// Internal to net/: the io_uring executor's state (uring.cc: one
// connection's operations; uring_loop.cc: the worker's ring, accepts,
// sweeper and shutdown). See uring.cc for the design.
#pragma once

#include <liburing.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/server_impl.h"

namespace net {

constexpr unsigned kRingEntries = 1024;
// Provided receive buffers per worker. A buffer is held only from its
// read's completion until the loop hands it to the machine (the same turn),
// so few are needed; a read that finds none (ENOBUFS, counted) is tried
// again. Each read touches at least a buffer's first page and the ring
// hands the buffers out in turn, so the pool's resident size is about
// kBuffers pages plus what large reads have used: with 128, 1 MiB over two
// workers, ~105 B per connection at 10,000 idle ones; with 16, ~13 B.
constexpr unsigned kBuffers = 16;  // a power of two
constexpr size_t kBufferSize = 16 * 1024;
// A second, small pool of large buffers for bulk input: a read whose
// previous read filled a 16 KiB buffer (a DATA body streaming in) takes
// 64 KiB at once, as the Asio executor does, instead of four completions.
// Few, so that at most 1 MiB per worker is ever faulted in (a pool of 128
// such buffers was tried and cost more in page faults than it saved).
constexpr unsigned kBigBuffers = 16;  // a power of two
constexpr size_t kBigBufferSize = 64 * 1024;
constexpr int kAcceptsPerListener = 1;  // accepts in flight per listener

enum Tag : uint64_t {
  kIgnore = 0,  // cancel results
  kSession = 1,
  kAccept = 2,
  kWake = 3,    // the eventfd: Stop()
  kSweep = 4,   // the sweeper's timer
  kPause = 5,   // accepting resumes
  kParked = 7,  // a parked session's read (UParked)
};
constexpr uint64_t kTagMask = 7;

// A request's user_data: the object's address (8-aligned, so its low 3
// bits carry the tag) and, in the top 16 bits, a generation (a session's
// serial). A cancel names its target by user_data, so the generation keeps
// it on the connection it was meant for: an object freed in the same loop
// turn (its completion was already in the batch) may have its address
// taken by a new session before the cancel reaches the kernel, and that
// session's request carries another serial. User-space addresses fit in
// 48 bits on Linux unless mmap is handed a higher hint, which nothing here
// does; Data checks it.
constexpr uint64_t kAddressMask = ((uint64_t(1) << 48) - 1) & ~kTagMask;
inline uint64_t Data(const void* p, Tag t, uint32_t generation = 0) {
  auto a = uint64_t(uintptr_t(p));
  if ((a >> 48) != 0) [[unlikely]] {
    std::fprintf(stderr, "io_uring: an address beyond 48 bits\n");
    std::abort();
  }
  return a | t | (uint64_t(generation & 0xffff) << 48);
}
inline void* AddressOf(uint64_t data) {
  return reinterpret_cast<void*>(uintptr_t(data & kAddressMask));
}

inline __kernel_timespec Spec(base::Duration d) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  if (ns < 0) ns = 0;
  return __kernel_timespec{ns / 1000000000, ns % 1000000000};
}

// The address and port of an accepted peer.
base::IpAddress IpOf(const sockaddr_storage& a, uint16_t* port);

struct USession;

// A session idle in a read with its machine packed (Connection::Pack): one
// allocation of about 100 bytes while the client is silent, instead of the
// USession (256) and the machine's parked engine (48-64). Its read is
// pending with the record's address (kParked); the completion remakes the
// USession (UringLoop::Unpark) and hands it the result. The sweeper asks
// Connection::PackedExpired, and an abort cancels the read as for a
// USession. Kept in Uring::parked (a sentinel), beside the sessions' list.
struct UParked {
  UParked* prev = nullptr;
  UParked* next = nullptr;
  int fd = -1;
  uint32_t serial = 0;
  // 0, or the abort's CloseReason + 1 (one byte: with a 94-byte machine, an
  // IPv4 client after EHLO, the record is 119 bytes, a 128-byte chunk).
  uint8_t abort = 0;
  // The packed machine starts here and runs on past the struct.
  uint8_t packed[7];
  bool aborted() const { return abort != 0; }
  peer::CloseReason abort_reason() const {
    return peer::CloseReason(abort - 1);
  }
  uint8_t* bytes() {
    return reinterpret_cast<uint8_t*>(this) + offsetof(UParked, packed);
  }
  // The allocation for a packed machine of n bytes.
  static size_t SizeFor(size_t n) {
    return std::max(sizeof(UParked), offsetof(UParked, packed) + n);
  }
};

// Short waits (the stutter's steps) are kept by the worker, not the kernel:
// the loop waits for completions until the first deadline (one timeout
// argument to io_uring_enter, no submission), then serves every wait that
// is due, so the writes of a tick go out in one submission.
using Deadline = std::chrono::steady_clock::time_point;
using Timers = std::multimap<Deadline, USession*>;

struct AcceptSlot {
  int fd = -1;
  bool pending = false;  // submitted, not completed
  // A multishot accept (Linux 5.19+): one request accepts every connection
  // until it ends (a completion without IORING_CQE_F_MORE). The address
  // is then asked with getpeername, since each accept of a burst would
  // overwrite the one buffer before its completion is read.
  bool multishot = true;
  socklen_t len = 0;
  sockaddr_storage addr{};
};

// Copies of replies queued with MSG_DONTWAIT sends (their bytes live in the
// thread's reply buffer, which the next connection reuses). Such a send
// completes while the submission is made, so a stash filled in one loop
// turn is empty of pending sends once the next turn's completions are
// handled; two stashes alternate.
class Stash {
 public:
  std::string_view Put(std::string_view d) {
    if (blocks_.empty() || used_ + d.size() > size_) {
      size_ = std::max(kBlock, d.size());
      blocks_.push_back(std::make_unique<char[]>(size_));
      used_ = 0;
    }
    char* p = blocks_.back().get() + used_;
    std::memcpy(p, d.data(), d.size());
    used_ += d.size();
    ++pending;
    return {p, d.size()};
  }
  // Forgets the copies (keeps one block), unless a send still uses one.
  void Reset() {
    if (pending > 0 || blocks_.empty()) return;
    if (blocks_.size() > 1 || size_ != kBlock) {
      blocks_.clear();
      return;
    }
    used_ = 0;
  }
  int pending = 0;  // sends not yet completed

 private:
  static constexpr size_t kBlock = 64 * 1024;
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t used_ = 0, size_ = 0;
};

// A provided-buffer ring (buffer group) and its buffers.
struct Pool {
  io_uring_buf_ring* br = nullptr;
  char* mem = nullptr;
  size_t br_bytes = 0;
  unsigned count = 0;
  size_t size = 0;
  ~Pool() {
    if (br) munmap(br, br_bytes);
    if (mem) munmap(mem, size_t(count) * size);
  }
  char* Buffer(unsigned bid) { return mem + size_t(bid) * size; }
  void Recycle(unsigned bid) {
    io_uring_buf_ring_add(br, Buffer(bid), unsigned(size), uint16_t(bid),
                          io_uring_buf_ring_mask(count), 0);
    io_uring_buf_ring_advance(br, 1);
  }
};

struct Uring {
  Worker* w = nullptr;
  Stash stash[2];
  unsigned turn = 0;  // stash[turn & 1] takes this turn's copies
  io_uring ring{};
  bool ring_ok = false;
  // pool[0]: kBuffers x kBufferSize (group 0); pool[1]: the large buffers
  // (group 1), absent (br null) if the kernel refused a second group.
  Pool pool[2];
  int wake_fd = -1;
  uint64_t wake_value = 0;
  __kernel_timespec sweep_spec{}, pause_spec{};
  std::deque<__kernel_timespec> specs;  // timer specs until submitted
  Timers timers;                        // short waits (Op::kTick)
  std::vector<std::unique_ptr<AcceptSlot>> slots;
  int accepts_pending = 0;
  bool pause_armed = false;
  UParked parked;  // the sentinel of the parked sessions' list
  int64_t sessions = 0;

  ~Uring() {
    if (ring_ok) io_uring_queue_exit(&ring);
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
  // Makes room for n submissions in a row (a linked pair must go to the
  // kernel in one submission).
  void Reserve(unsigned n) {
    while (io_uring_sq_space_left(&ring) < n) io_uring_submit(&ring);
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
    kTimer,    // a ring timeout, or a poll linked to one
    kTick,     // a short wait in u.timers
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

  USession(Server::Impl& s, Uring& u, int fd)
      : s(s), u(u), m(&u.w->env), fd(fd) {}

  void Run(conn::Command c);
  void OnCompletion(int res, unsigned flags);
  void Abort(peer::CloseReason why) {
    if (aborted) return;
    aborted = true;
    abort_reason = why;
    if (op == Op::kTick) {  // due at once: the loop serves it this turn
      u.timers.erase(timer);
      timer = u.timers.emplace(Deadline(), this);  // (the clock's epoch)
      return;
    }
    if (op != Op::kNone) u.Cancel(Key());
  }
  // The user_data of this session's requests (its serial as generation).
  uint64_t Key() const { return Data(this, kSession, serial); }
  bool InputWaiting() const {
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) == 0 && n > 0) return true;
    return tls && (SSL_pending(tls->ssl) > 0 || BIO_ctrl_pending(tls->rbio));
  }
  // The size of the read the machine asked for (kept by the machine).
  size_t Want() const { return std::min(m.read_size(), kReadBuffer); }
  void SubmitRecv(Op o, size_t want, bool big_ok = true);
  void SubmitSend(Op o, std::string_view data);
  void TlsHandshake();
  void TlsRead();
  void TlsSend(std::string_view data);
  // Sends what OpenSSL has written; true if a send is now pending.
  bool TlsFlush(Then then);
  void TlsContinue();
  void Finish();
  // Packs the machine (Packable, plain TCP) into a UParked that takes this
  // session's place and reads for it, and deletes this session.
  void Park();

  // Kept small: one per open connection (the worker is u.w).
  USession* prev = nullptr;
  USession* next = nullptr;
  Server::Impl& s;
  Uring& u;
  conn::Connection m;
  std::unique_ptr<Tls> tls;
  Timers::iterator timer;  // while op is kTick
  int fd;
  uint32_t serial = 0;
  Op op = Op::kNone;
  bool aborted = false;
  bool peek = false;
  bool more = false;  // the last read filled its buffer: more may be queued
  uint8_t group = 0;  // the buffer group of the pending read
  static constexpr uint8_t kNoStash = 2;
  uint8_t stashed = kNoStash;  // the stash holding the pending send's bytes
  peer::CloseReason abort_reason = peer::CloseReason::kIdleTimeout;
};

}  // namespace net
