// Internal to net/: the server's shared state and its workers (server.cc:
// listeners, accept, sweeper, shutdown; session.cc: the executor that
// carries out one connection machine's commands). Not for use outside net/.
#pragma once

#include <array>
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "base/metrics.h"
#include "conn/connection.h"
#include "conn/plan_table.h"
#include "net/ip_counts.h"
#include "net/server.h"
#include "peer/cache.h"
#include "tarpit/policy.h"

namespace net {

using asio::ip::tcp;
inline constexpr auto kNoThrow =
    asio::experimental::as_tuple(asio::use_awaitable);
inline constexpr size_t kReadBuffer = 64 * 1024;
// A tarpit wait at least this long also watches for the peer's departure
// (FIN or reset), which then ends the wait at once. Shorter waits (the
// stutter's 1 s steps) do without: the watch costs a poll arming per wait
// (about a fifth more server CPU per stutter byte), and a departed peer is
// noticed at the next write anyway, less than this later.
inline constexpr base::Duration kWatchPeerFrom = std::chrono::seconds(2);

// Sessions' sockets and timers name the io_context's executor type rather
// than any_io_executor (8 bytes instead of 56: a socket is 40 B instead of
// 88, a timer 72 B instead of 120), and their pending operations carry no
// type-erased work tracking.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Timer =
    asio::basic_waitable_timer<std::chrono::steady_clock,
                               asio::wait_traits<std::chrono::steady_clock>,
                               Executor>;

struct Session;
struct Uring;  // uring.cc: a worker's ring, buffers and sessions

// The executor that serves connections (server.cc chooses it at start-up).
enum class ExecutorKind { kAsio, kUring };

// uring.cc: "" if this kernel lets us run the io_uring executor, else why
// not (old kernel, kernel.io_uring_disabled, seccomp).
std::string ProbeUring();

// A connection as the sweeper sees it: the worker's list, and the abort it
// has ordered (delivered to the machine by the pending operation's handler).
// (A Session is a Conn: session.cc.)
struct Conn {
  Conn* prev = nullptr;
  Conn* next = nullptr;
  bool aborted = false;
  peer::CloseReason abort_reason = peer::CloseReason::kIdleTimeout;
};

// The server around the connection machines: per-IP counts and the
// in-memory reputation.
// IPv6 clients are counted and known per network of ipv6_prefix bits.
class PeerHost final : public conn::Host {
 public:
  PeerHost(int ipv6_prefix, size_t budget_bytes)
      : ipv6_prefix(ipv6_prefix), cache(budget_bytes, ipv6_prefix) {}
  int Enter(const base::IpAddress& ip) override {
    return counts.Add(base::PrefixKey(ip, ipv6_prefix));
  }
  void Leave(const base::IpAddress& ip) override {
    counts.Remove(base::PrefixKey(ip, ipv6_prefix));
  }
  peer::History History(const base::IpAddress& ip) override {
    return cache.Lookup(ip);
  }
  const int ipv6_prefix;
  IpCounts counts;
  peer::Cache cache;
};

// One accept loop's "paused for lack of descriptors" flag, mirrored in
// base::g_paused_accepts (/healthz, /metrics). Cleared when the loop
// accepts again and when it ends (destroyed with a coroutine frame or a
// worker). Used by its loop's thread only.
class AcceptPause {
 public:
  AcceptPause() = default;
  AcceptPause(const AcceptPause&) = delete;
  AcceptPause& operator=(const AcceptPause&) = delete;
  ~AcceptPause() { Set(false); }
  void Set(bool paused) {
    if (paused == paused_) return;
    paused_ = paused;
    base::g_paused_accepts.fetch_add(paused ? 1 : -1,
                                     std::memory_order_relaxed);
  }

 private:
  bool paused_ = false;
};

struct Worker {
  Worker(int index, uint64_t seed)
      : index(index), io(1), rng(seed), sweeper(io) {}
  int index;
  // Before io and uring: their sessions release their plans into it.
  conn::PlanTable plans;
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::unique_ptr<char[]> read_buf{new char[kReadBuffer]};
  smtp::Output output;         // replies of the machine being served right now
  Conn head;                   // sentinel of the list of open connections
  tarpit::SplitMixRandom rng;  // seeded per process: timings differ per run
  conn::Env env{};
  // io_uring workers: settings published by Reload, applied by the worker's
  // own thread when its wake-up arrives (the Asio workers get a post).
  std::atomic<const conn::Limits*> reload_limits{nullptr};
  std::atomic<const smtp::SessionOptions*> reload_smtp{nullptr};
  std::atomic<const tarpit::Options*> reload_tarpit{nullptr};
  asio::steady_timer sweeper;
  bool stopping = false;
  uint64_t next_session = 0;
  std::thread thread;
  std::unique_ptr<Uring, void (*)(Uring*)> uring{nullptr, nullptr};
  AcceptPause accept_pause;  // io_uring workers (Asio: one per AcceptLoop)
  // server.memory_limit: the last shedding state and epoch this worker
  // acted on (Server::Impl::memory_shed, memory_epoch).
  bool shed_seen = false;
  uint64_t memory_epoch = 0;
};

// What a reload may change, as one immutable snapshot that the workers'
// conn::Env point into.
struct Live {
  conn::Limits limits;
  smtp::SessionOptions session;
  tarpit::Options tarpit;
  bool log_sessions = true;
};

struct Server::Impl {
  Impl(int ipv6_prefix, size_t budget_bytes)
      : host(ipv6_prefix, budget_bytes) {}
  ServerParams p;
  // Every snapshot so far (a reload adds one; a few KB each): sessions may
  // still point into older ones. The last is current. Guarded by live_mu.
  std::mutex live_mu;
  std::vector<std::unique_ptr<const Live>> live;
  std::atomic<const Live*> current{nullptr};
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<base::Cidr> trusted;
  PeerHost host;
  conn::Gauges gauges;
  std::atomic<bool> stopping{false};
  int64_t fd_limit = 1024;
  std::chrono::milliseconds sweep_period{1000};
  ExecutorKind executor = ExecutorKind::kAsio;
  std::string executor_reason;  // why this one (logged at Bind)
  std::string executor_error;   // io_uring demanded but unusable: Bind fails
  // server.memory_limit, judged by worker 0's sweep (CheckMemory): shedding
  // from a reading above the limit until one below 90% of it (accepting
  // pauses meanwhile); memory_epoch counts the readings above the limit,
  // and each worker cuts one round of its oldest held sessions per epoch.
  std::atomic<bool> memory_shed{false};
  std::atomic<uint64_t> memory_epoch{0};

  base::Status Bind();
  std::unique_ptr<Live> MakeLive(const ServerParams& params) const;
  void StartWorker(Worker& w);
  asio::awaitable<void> AcceptLoop(Worker& w, tcp::acceptor& acc);
  // One connection's life, from accept to the record (session.cc). The
  // session owns itself and is deleted when it ends.
  void StartSession(Worker& w, Socket sock, const tcp::endpoint& peer);
  asio::awaitable<void> Sweep(Worker& w);
  // session.cc: whether c's deadline has passed; cancel c's pending
  // operation so that its handler delivers the abort to the machine.
  static std::optional<peer::CloseReason> SessionExpired(Conn* c,
                                                         base::SteadyTime now);
  static void AbortSession(Conn* c, peer::CloseReason why);
  void StopWorker(Worker& w);
  // Resident bytes (p.rss in tests, else /proc/self/statm); -1 if unknown.
  int64_t ReadRss() const;
  int statm_fd = -1;  // /proc/self/statm, opened by Server::Server
  void CheckMemory();
  // Held sessions one worker cuts in one round: a quarter of all held
  // sessions spread over the workers, at least one.
  int64_t ShedQuota() const;
  // Logs and counts one worker's round of cuts.
  static void NoteShed(const Worker& w, int64_t cut);
  // session.cc: whether the tarpit holds c.
  static bool SessionHeld(Conn* c);
  // The record and the log line of an ended session (both executors).
  void EndSession(const char* id, const conn::Connection& m);
  // uring.cc: makes w's ring (false and why on failure), serves w's
  // listeners until stopped, and asks w to stop (any thread).
  bool MakeUring(Worker& w, std::string* why);
  void ChooseExecutor();
  void RunUring(Worker& w);
  static void WakeUring(Worker& w);
  bool Trusted(const base::IpAddress& ip) const {
    for (const auto& n : trusted) {
      if (n.Contains(ip)) return true;
    }
    return false;
  }
};

base::IpAddress ToIp(const asio::ip::address& a);
// "1a000042": the worker's index, then the session's serial (hex).
std::array<char, 40> SessionId(int worker, uint32_t serial);

}  // namespace net
