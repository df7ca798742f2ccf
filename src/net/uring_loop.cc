// The io_uring executor's worker: its ring and provided buffers, accepts,
// the sweeper, shutdown, and the loop that submits a turn's operations and
// hands each completion to its session (uring.cc).
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/log.h"
#include "base/metrics.h"
#include "net/uring_impl.h"

namespace net {

using base::Count;
using base::Counter;

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
    if (a.multishot) {
      io_uring_prep_multishot_accept(q, a.fd, nullptr, nullptr, SOCK_CLOEXEC);
    } else {
      io_uring_prep_accept(q, a.fd, reinterpret_cast<sockaddr*>(&a.addr),
                           &a.len, SOCK_CLOEXEC);
    }
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
    // The API's sockets count too (it may use the reserve itself).
    return s.gauges.open.load(std::memory_order_relaxed) +
               base::g_api_connections.load(std::memory_order_relaxed) +
               reserve >=
           s.fd_limit;
  }
  // Accepts again on a slot, unless descriptors are short (then later).
  void Rearm(AcceptSlot& a) {  // keeps w.accept_pause
    if (w.stopping) return;
    bool no_fds = OutOfDescriptors();
    if (no_fds || s.memory_shed.load(std::memory_order_relaxed)) {
      w.accept_pause.Set(true);
      if (no_fds) Count(Counter::kAcceptPauses);
      return Pause(std::chrono::milliseconds(100));
    }
    w.accept_pause.Set(false);
    SubmitAccept(a);
  }
  void OnAccept(AcceptSlot& a, int res, unsigned flags) {
    // A multishot accept stays armed while its completions say MORE.
    bool armed = a.multishot && (flags & IORING_CQE_F_MORE);
    if (!armed) {
      a.pending = false;
      --u.accepts_pending;
    }
    if (res >= 0) {
      if (w.stopping) {
        ::close(res);
        return;
      }
      Count(Counter::kConnectionsAccepted);
      if (a.multishot) {
        a.len = sizeof a.addr;
        if (getpeername(res, reinterpret_cast<sockaddr*>(&a.addr), &a.len)) {
          ::close(res);  // reset before we saw it: nothing to serve
          return armed ? void() : Rearm(a);
        }
      }
      Start(res, a.addr);
      if (!armed) return Rearm(a);
      if (OutOfDescriptors()) {  // stop accepting; the pause re-arms
        u.Cancel(Data(&a, kAccept));
        w.accept_pause.Set(true);
        Count(Counter::kAcceptPauses);
        Pause(std::chrono::milliseconds(100));
      }
      return;
    }
    if (w.stopping) return;
    if (res == -ECANCELED) {  // our cancel (descriptors short): the pause
      return Pause(std::chrono::milliseconds(100));  // re-arms the slot
    }
    if (res == -EINVAL && a.multishot) {  // a kernel before multishot accept
      a.multishot = false;
      return Rearm(a);
    }
    Count(Counter::kAcceptErrors);
    bool no_fds =
        res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM;
    if (no_fds) Count(Counter::kAcceptPauses);
    w.accept_pause.Set(no_fds);
    base::LogLine(base::LogLevel::kWarning, "accept_error")
        .Kv("error", std::strerror(-res));
    // A failed accept backs off and carries on; it never ends the server.
    // (A multishot one that is still armed carries on by itself.)
    if (!armed) Pause(std::chrono::milliseconds(no_fds ? 100 : 10));
  }
  void Start(int fd, const sockaddr_storage& addr) {
    auto* se = new USession(s, u, fd);
    se->serial = uint32_t(++w.next_session);
    se->prev = head.prev;
    se->next = &head;
    head.prev->next = se;
    head.prev = se;
    ++u.sessions;
    base::g_open_connections.fetch_add(1, std::memory_order_relaxed);
    uint16_t port = 0;
    base::IpAddress client = IpOf(addr, &port);
    se->Run(se->m.Start(client, port, s.Trusted(client)));
  }
  // A parked session's read completed (or was cancelled): the session is
  // made again from its record, at the end of the sessions' list, and
  // handles the result as its own read's.
  void Unpark(UParked* r, int res, unsigned flags) {
    auto* se = new USession(s, u, r->fd);
    se->serial = r->serial;
    se->m.Unpack(r->bytes());
    se->op = USession::Op::kRecv;
    se->group = 0;
    se->aborted = r->aborted();
    if (r->aborted()) se->abort_reason = r->abort_reason();
    r->prev->next = r->next;
    r->next->prev = r->prev;
    r->~UParked();
    ::operator delete(r);
    se->prev = head.prev;
    se->next = &head;
    head.prev->next = se;
    head.prev = se;
    se->OnCompletion(res, flags);
  }
  void AbortParked(UParked* r, peer::CloseReason why) {
    if (r->aborted()) return;
    r->abort = uint8_t(uint8_t(why) + 1);
    u.Cancel(Data(r, kParked, r->serial));
  }
  void Sweep() {
    auto now = s.p.clock->Now();
    for (USession* c = head.next; c != &head; c = c->next) {
      if (c->aborted) continue;
      if (auto why = c->m.Expired(now)) c->Abort(*why);
    }
    for (UParked* r = u.parked.next; r != &u.parked; r = r->next) {
      if (r->aborted()) continue;
      if (auto why = conn::Connection::PackedExpired(r->bytes(), now)) {
        AbortParked(r, *why);
      }
    }
    if (w.index == 0) s.CheckMemory();
    bool shed = s.memory_shed.load(std::memory_order_relaxed);
    if (shed && !w.shed_seen) {
      // Withdraw the pending accepts; the pause re-arms them once the
      // memory is back under the low-water mark.
      for (auto& a : u.slots) {
        if (a->pending) u.Cancel(Data(a.get(), kAccept));
      }
      w.accept_pause.Set(true);
      Pause(std::chrono::milliseconds(100));
    }
    w.shed_seen = shed;
    uint64_t epoch = s.memory_epoch.load(std::memory_order_relaxed);
    if (epoch != w.memory_epoch) {
      w.memory_epoch = epoch;
      // The list is in accept order: the oldest held sessions go first.
      int64_t quota = s.ShedQuota(), cut = 0;
      for (USession* c = head.next; c != &head && cut < quota; c = c->next) {
        if (c->aborted || !c->m.held()) continue;
        c->Abort(peer::CloseReason::kMemoryLimit);
        ++cut;
      }
      Server::Impl::NoteShed(w, cut);
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
    for (UParked* r = u.parked.next; r != &u.parked; r = r->next) {
      AbortParked(r, peer::CloseReason::kShutdown);
    }
  }
  void Dispatch(const io_uring_cqe* cqe) {
    uint64_t d = io_uring_cqe_get_data64(cqe);
    void* p = AddressOf(d);
    switch (Tag(d & kTagMask)) {
      case kSession:
        return static_cast<USession*>(p)->OnCompletion(cqe->res, cqe->flags);
      case kParked:
        return Unpark(static_cast<UParked*>(p), cqe->res, cqe->flags);
      case kAccept:
        return OnAccept(*static_cast<AcceptSlot*>(p), cqe->res, cqe->flags);
      case kWake:
        // A wake-up is a stop, or new settings (Reload).
        if (s.stopping.load()) {
          if (!w.stopping) Stop();
          return;
        }
        if (const conn::Limits* lim =
                w.reload_limits.exchange(nullptr, std::memory_order_acquire)) {
          w.env.limits = lim;
          w.env.smtp = w.reload_smtp.load(std::memory_order_relaxed);
          w.env.tarpit = w.reload_tarpit.load(std::memory_order_relaxed);
        }
        return ArmWake();
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

// Maps a pool's buffers (faulted in only when used) and registers them as
// buffer group `group`.
bool MapPool(io_uring& ring, Pool& p, uint16_t group, unsigned count,
             size_t size, std::string* why) {
  long page = sysconf(_SC_PAGESIZE);
  size_t ring_bytes = (count * sizeof(io_uring_buf) + page - 1) / page * page;
  void* ring_mem = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* bufs = mmap(nullptr, size_t(count) * size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ring_mem == MAP_FAILED || bufs == MAP_FAILED) {
    *why = "cannot map the receive buffers";
    if (ring_mem != MAP_FAILED) munmap(ring_mem, ring_bytes);
    if (bufs != MAP_FAILED) munmap(bufs, size_t(count) * size);
    return false;
  }
  p.br = static_cast<io_uring_buf_ring*>(ring_mem);
  p.br_bytes = ring_bytes;
  p.mem = static_cast<char*>(bufs);
  p.count = count;
  p.size = size;
  io_uring_buf_ring_init(p.br);
  io_uring_buf_reg reg{};
  reg.ring_addr = uintptr_t(p.br);
  reg.ring_entries = count;
  reg.bgid = group;
  int e = io_uring_register_buf_ring(&ring, &reg, 0);
  if (e < 0) {
    *why =
        std::string("provided buffer ring (Linux 5.19+): ") + std::strerror(-e);
    munmap(p.br, ring_bytes);
    munmap(p.mem, size_t(count) * size);
    p.br = nullptr;  // absent
    p.mem = nullptr;
    return false;
  }
  for (unsigned i = 0; i < count; ++i) {
    io_uring_buf_ring_add(p.br, p.Buffer(i), unsigned(size), uint16_t(i),
                          io_uring_buf_ring_mask(count), int(i));
  }
  io_uring_buf_ring_advance(p.br, int(count));
  return true;
}

bool Server::Impl::MakeUring(Worker& w, std::string* why) {
  auto* u = new Uring;
  w.uring =
      std::unique_ptr<Uring, void (*)(Uring*)>(u, [](Uring* x) { delete x; });
  u->w = &w;
  io_uring_params params{};
  params.flags = IORING_SETUP_SUBMIT_ALL;
  params.cq_entries = kRingEntries * 8;
  params.flags |= IORING_SETUP_CQSIZE;
  // Completions' task work runs when the worker next enters the kernel (it
  // always does, to wait), not by interrupting it (Linux 5.19+).
  io_uring_params coop = params;
  coop.flags |= IORING_SETUP_COOP_TASKRUN;
  int e = io_uring_queue_init_params(kRingEntries, &u->ring, &coop);
  if (e == -EINVAL) {
    e = io_uring_queue_init_params(kRingEntries, &u->ring, &params);
  }
  if (e < 0) {
    *why = std::string("io_uring_setup: ") + std::strerror(-e);
    return false;
  }
  u->ring_ok = true;
  if (!MapPool(u->ring, u->pool[0], 0, kBuffers, kBufferSize, why)) {
    return false;
  }
  std::string ignored;  // without the large pool, bulk reads are 16 KiB
  MapPool(u->ring, u->pool[1], 1, kBigBuffers, kBigBufferSize, &ignored);
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
  USession head(*this, u, -1);
  head.prev = head.next = &head;
  u.parked.prev = u.parked.next = &u.parked;
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
  for (auto& a : u.slots) loop.Rearm(*a);  // paused at once if fds are short
  loop.ArmWake();
  loop.ArmSweep();
  if (stopping.load()) loop.Stop();
  for (;;) {
    if (w.stopping && head.next == &head && u.parked.next == &u.parked &&
        u.accepts_pending == 0) {
      break;
    }
    int e;
    if (u.timers.empty()) {
      e = io_uring_submit_and_wait(&u.ring, 1);
    } else {  // wait no later than the first short wait's deadline
      auto due = u.timers.begin()->first - std::chrono::steady_clock::now();
      __kernel_timespec ts = Spec(due);
      io_uring_cqe* first = nullptr;
      e = io_uring_submit_and_wait_timeout(&u.ring, &first, 1, &ts, nullptr);
      if (e == -ETIME) e = 0;
    }
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
    // The short waits now due (and aborted ones: Deadline()). A session
    // served here waits again at least 1 ns later, so this loop ends.
    auto now = std::chrono::steady_clock::now();
    for (int n = 0; n < 1 << 20 && !u.timers.empty(); ++n) {
      auto first = u.timers.begin();
      if (first->first > now) break;
      USession* se = first->second;
      u.timers.erase(first);
      se->OnCompletion(-ETIME, 0);
    }
    // The sends copied last turn have completed in this one.
    u.stash[(u.turn + 1) & 1].Reset();
    ++u.turn;
  }
  w.accept_pause.Set(false);  // a stopped loop is not a paused one
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
        {IORING_OP_ACCEPT, "accept"},
        {IORING_OP_RECV, "recv"},
        {IORING_OP_SEND, "send"},
        {IORING_OP_TIMEOUT, "timeout"},
        {IORING_OP_ASYNC_CANCEL, "cancel"},
        {IORING_OP_READ, "read"},
        {IORING_OP_POLL_ADD, "poll"},
        {IORING_OP_LINK_TIMEOUT, "link timeout"}};
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
