// Internal to net/: the server's shared state and its workers (server.cc:
// listeners, accept, sweeper, shutdown; session.cc: one connection's life,
// as a callback-driven state machine). Not for use outside net/.
#pragma once

#include <array>
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "net/peer_memory.h"
#include "net/server.h"
#include "tarpit/policy.h"

namespace net {

using asio::ip::tcp;
inline constexpr auto kNoThrow =
    asio::experimental::as_tuple(asio::use_awaitable);
inline constexpr size_t kReadBuffer = 64 * 1024;

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

// A connection as the sweeper sees it: deadlines and the socket to cancel.
struct Conn {
  Conn* prev = nullptr;
  Conn* next = nullptr;
  Socket* socket = nullptr;
  base::SteadyTime idle_deadline;
  base::SteadyTime session_deadline;
  Timer* timer = nullptr;           // the tarpit's, when it has one
  bool waiting_for_client = false;  // idle deadline applies
  bool aborted = false;
  smtp::Reply abort_reply = smtp::Reply::kIdleTimeout;
  smtp::CloseReason abort_reason = smtp::CloseReason::kIdleTimeout;
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
  base::Duration idle_timeout{};  // smtp.idle_timeout
  std::chrono::milliseconds sweep_period{1000};

  base::Status Bind();
  void StartWorker(Worker& w);
  asio::awaitable<void> AcceptLoop(Worker& w, tcp::acceptor& acc);
  // One connection's life, from accept to the record (session.cc). The
  // session owns itself and is deleted when it ends.
  void StartSession(Worker& w, Socket sock, const tcp::endpoint& peer);
  asio::awaitable<void> Sweep(Worker& w);
  void StopWorker(Worker& w);
  bool Trusted(const base::IpAddress& ip) const {
    for (const auto& n : trusted) {
      if (n.Contains(ip)) return true;
    }
    return false;
  }
};

base::IpAddress ToIp(const asio::ip::address& a);

}  // namespace net
