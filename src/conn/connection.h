// The connection machine: everything that decides what one SMTP connection
// does next, as a pure state machine. Events go in (bytes arrived, bytes
// sent, timer fired, TLS ready, peer closed, aborted); each returns the one
// Command the executor carries out next (read, send, wait, start TLS, half
// close, close). It owns no socket and reads time from the injected clock,
// so every tarpit path, limit and timeout is tested without sockets, and
// plain TCP and TLS share one path (the same pacing inside TLS as outside).
//
// What it decides: the PROXY header, the connection caps, the tarpit's plan
// (greeting delay, early-talker check, pacing and stutter of each reply by
// its stage, the slow reader and its receive window), flow control (no more
// input is taken while a step's replies are unsent: the engine stops at
// smtp max_output bytes and the rest of the read waits here), the idle and
// session deadlines (a write that makes no progress for the idle timeout
// ends the session too), 421 on shutdown, the STARTTLS switch-over and the
// lingering close.
//
// Executor contract (net/ implements it; tests play it by hand):
//   Command c = m.Start(...);
//   loop: carry out c, then c = m.On...(result), until c.kind == kClose.
//   kRead:  wait until readable, read at most c.bytes → OnRead(bytes) (the
//           view need only live for the call), OnEof() or OnError(). If
//           c.window > 0, first clamp the receive window to it.
//   kSend:  c.wait false: one non-blocking attempt now; c.wait true: wait
//           until writable (the bytes stay valid until the next event).
//           Then OnSent(n), n = bytes taken (0 allowed), or OnError().
//           c.stable: the bytes stay valid until the next event even when
//           c.wait is false, so the attempt may be queued with the other
//           connections' writes of this loop turn (one submission for all
//           the stutter bytes due together).
//   kWait:  arm a timer for c.delay → OnTimer(input_waiting), where
//           input_waiting says (only if c.peek) whether input is queued.
//           An executor that sees the peer leave meanwhile (EPOLLRDHUP)
//           may cancel the timer and call OnEof() instead.
//   kStartTls: server handshake → OnTlsDone(ok); later reads and sends go
//           through TLS.
//   kHalfClose: shutdown(SHUT_WR) → OnHalfClosed(ok).
//   kClose: close the socket; Summary() is the session's record.
// Deadlines: the executor's sweeper asks Expired(now) now and then; when it
// answers, the executor cancels the pending operation and calls
// OnAbort(reason) instead of its result. Shutdown does the same with
// CloseReason::kShutdown.
//
// Accounting: a tarpit wait counts (delay_seconds, the delay counter) only
// once served: all of it when its timer fires, the part until now when an
// abort or the peer's departure cuts it short. duration_seconds ends at the
// close: exact when the executor reports a departed peer at once (OnEof
// during a wait), late by one wait when it learns of it only at the next
// read or write.
//
// Threading: one machine belongs to one thread. Memory: an idle machine
// holds no buffer; replies, unread input and the pacer's copy exist only
// while there is something to send; and while it waits for the client or a
// tarpit delay between transactions, its SMTP engine is parked (a few dozen
// bytes) and rebuilt when the wait ends.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/ip.h"
#include "conn/outbox.h"
#include "peer/history.h"
#include "smtp/server_session.h"
#include "tarpit/policy.h"

namespace conn {

using peer::CloseReason;

class PlanTable;

struct Command {
  enum class Kind : uint8_t {
    kRead,
    kSend,
    kWait,
    kStartTls,
    kHalfClose,
    kClose,
  };
  Kind kind = Kind::kClose;
  bool wait = false;       // kSend: wait until writable first
  bool stable = false;     // kSend: bytes valid until the next event
  bool peek = false;       // kWait: report whether input is waiting
  int window = 0;          // kRead: clamp the receive window first (0: leave)
  size_t bytes = 0;        // kRead: at most this many
  std::string_view data;   // kSend
  base::Duration delay{};  // kWait
};

// The connection settings (from the server's and the tarpit's options).
struct Limits {
  base::Duration session_timeout = std::chrono::seconds(600);
  base::Duration idle_timeout = std::chrono::seconds(300);
  base::Duration proxy_timeout = std::chrono::seconds(5);
  int64_t max_connections = 20000;
  int max_connections_per_ip = 50;
  size_t read_size = 64 * 1024;  // largest read
  // The lingering close: discard input for at most this long and this much.
  base::Duration linger_time = std::chrono::seconds(1);
  size_t linger_bytes = 1 << 20;
};

// Server-wide figures the machines share (atomics: several threads).
struct Gauges {
  std::atomic<int64_t> open{0};        // connections, this one included
  std::atomic<int64_t> held{0};        // held by the tarpit
  std::atomic<int64_t> stuttering{0};  // being stuttered
};

// The server around the machines: the per-IP count and the reputation.
// Called from the machine's thread; must not block.
class Host {
 public:
  virtual ~Host() = default;
  // Counts one more connection from ip; returns the count, this one
  // included. Leave() undoes it when the connection closes.
  virtual int Enter(const base::IpAddress& ip) = 0;
  virtual void Leave(const base::IpAddress& ip) = 0;
  // What is known of ip from earlier sessions.
  virtual peer::History History(const base::IpAddress& ip) = 0;
};

// What a machine reads; shared by the machines of one thread.
struct Env {
  const Limits* limits;
  const smtp::SessionOptions* smtp;
  const tarpit::Options* tarpit;
  const base::Clock* clock;
  tarpit::Random* random;
  smtp::Output* output;  // the thread's reply buffer
  Host* host;
  Gauges* gauges;
  const bool* stopping;  // the server is shutting down: no lingering close
  // The thread's distinct tarpit plans, shared by its held connections
  // (null: each connection keeps its own copy).
  PlanTable* plans = nullptr;
};

class Connection {
 public:
  // REQUIRES: env and what it points to outlive the machine.
  explicit Connection(const Env* env);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The connection was accepted from client:port. A client in a trusted
  // proxy network must send a PROXY header first.
  Command Start(const base::IpAddress& client, uint16_t port,
                bool trusted_proxy);
  Command OnRead(std::string_view bytes);
  Command OnEof();
  Command OnError();
  Command OnSent(size_t n);
  Command OnTimer(bool input_waiting);
  Command OnTlsDone(bool ok);
  Command OnHalfClosed(bool ok);
  Command OnAbort(CloseReason why);

  // The executor copied the bytes of the pending kSend (c.stable false) so
  // that it can report OnSent later, with other connections' writes in one
  // submission: copy stands in for them and must stay valid until then.
  void SendCopied(std::string_view copy) {
    if (!outbox_) direct_data_ = copy.data();
  }
  // Whether a deadline has passed at now, and which: kSessionTimeout, or
  // kIdleTimeout while waiting for the client to send or to take our bytes.
  std::optional<CloseReason> Expired(base::SteadyTime now) const;
  // The record of the session (complete after kClose).
  peer::SessionSummary Summary() const;
  bool closed() const { return phase_ == Phase::kClosed; }
  bool tls() const { return facts_.tls; }
  // The session was tarpitted (held): its close counts the retransmissions.
  bool tarpitted() const { return facts_.tarpitted; }
  // The bytes of the kSend in progress (valid until the next event), and
  // the size of the kRead in progress: an executor need not keep them.
  std::string_view sending() const;
  size_t read_size() const { return read_size_; }
  // Bytes held for this connection: unread input and unsent replies.
  size_t buffered_bytes() const {
    return (input_ ? input_->capacity() : 0) +
           (outbox_ ? outbox_->footprint() : 0);
  }
  // Whether the SMTP engine is parked (the session idles between
  // transactions; tests and memory figures).
  bool parked() const { return parked_ != nullptr; }
  // Packing (connection_pack.cc): a machine waiting for the client in a
  // read, its engine parked and nothing else held (no tarpit part, replies,
  // input or wait), can be kept by the executor as a few dozen bytes while
  // the client is silent, and the machine freed. Unpack() into a new machine
  // on the same Env gives one that answers every later event as the packed
  // one would have (park_test's PackedMachinesAnswerAsIfNeverPacked).
  bool Packable() const;
  // REQUIRES: Packable(). The packed form's size; Pack writes it to out.
  size_t PackedSize() const;
  void Pack(uint8_t* out) const;
  // REQUIRES: a machine just made (never started); packed by Pack().
  void Unpack(const uint8_t* packed);
  // Expired(now) of the packed machine.
  static std::optional<CloseReason> PackedExpired(const uint8_t* packed,
                                                  base::SteadyTime now);
  // The tarpit's plan (tests and logs; a copy), none if the tarpit is off.
  std::optional<tarpit::Plan> plan() const;
  // The tarpit holds the connection (its plan's held).
  bool held() const;

 private:
  enum class Phase : uint8_t {
    kProxy,       // reading the PROXY header
    kGreetDelay,  // the tarpit's greeting delay (then the early-talk check)
    kSending,     // replies going out (paced or not)
    kReading,     // waiting for the client
    kPause,       // the slow reader's pause after a DATA read
    kTls,         // TLS handshake
    kLastWords,   // the last reply (421, 554 refusal) before closing
    kLinger,      // half closed, discarding input
    kClosed,
  };
  // What follows the replies being sent.
  enum class Then : uint8_t { kRead, kClose, kStartTls };
  struct Tarpit;

  Command Admit();
  Command Greet();
  Command Process(std::string_view input);
  Command Emit(const smtp::Step& step, Then then, bool skip_first_delay);
  Command NextChunk();
  Command AfterSent();
  Command ReadNext();
  Command LastWords(smtp::Reply reply, CloseReason why);
  Command CloseNow();
  Command Close();
  void Decide();
  void CountEvents(const smtp::Events& e);
  Command Read(size_t bytes, int window = 0);
  Command Send(std::string_view data, bool wait);
  Command Wait(base::Duration d, bool peek = false);
  // Ends the pending wait, if any: counts it whole when its timer fired,
  // else the part served until now.
  void EndWait(bool fired);
  smtp::ServerSession& Engine();
  // Parks the engine if it is between transactions.
  void Park();
  void Touch() {
    idle_deadline_ = env_->clock->Now() + env_->limits->idle_timeout;
  }

  const Env* env_;
  Phase phase_ = Phase::kProxy;
  Then then_ = Then::kRead;
  bool admitted_ = false;
  bool early_ = false;  // spoke before our banner
  smtp::Action action_ = smtp::Action::kContinue;
  bool waiting_on_client_ = false;  // a read, or a send waiting for room
  bool timing_ = false;             // a tarpit wait is pending (below)
  // (Members are ordered so that the machine has no padding: one per open
  // connection.)
  base::SteadyTime start_{};
  base::SteadyTime session_deadline_{};
  base::SteadyTime idle_deadline_{};
  peer::ConnectionFacts facts_;
  // The SMTP engine, or while the session idles (a read or a tarpit wait
  // with no transaction open) its parked bytes (ServerSession::Park), so
  // that a held connection keeps a few dozen bytes instead of the engine.
  // Engine() resumes it. At most one of the two is set.
  std::unique_ptr<smtp::ServerSession> engine_;
  std::unique_ptr<uint8_t[]> parked_;
  std::unique_ptr<Tarpit> tarpit_;      // only when the tarpit is on
  std::unique_ptr<Outbox> outbox_;      // only while replies wait to be sent
  std::unique_ptr<std::string> input_;  // unread input (PROXY, flow control)
  // Unpaced replies sent straight from the thread's buffer (or from the
  // executor's copy of them, SendCopied): direct_size_ bytes at
  // direct_data_.
  const char* direct_data_ = nullptr;
  uint32_t direct_size_ = 0;
  uint32_t read_size_ = 0;
  uint32_t limits_hit_ = 0;  // limits enforced here (caps, session time)
  uint32_t lingered_ = 0;
  // The tarpit wait pending, if timing_: when it began and how long.
  base::SteadyTime wait_started_{};
  base::Duration wait_planned_{};
};

}  // namespace conn
