// The SMTP client engine of smtpsend: a pure state machine. The driver feeds
// it events (connected, bytes read, write finished, timeout, hang-up, TLS
// done) with the current time; the engine answers with what to do next
// (want(): write these pieces, read, start TLS, idle, close) and records
// every phase latency and message outcome into a Stats. It never touches a
// socket, a timer or a clock, so tests drive it with strings.
//
// Per connection it allocates nothing once constructed: commands and headers
// are formatted into buffers reserved up front, envelopes and bodies are
// static pieces owned by the MessageGenerator.
//
// Threading: one engine per client coroutine, used by one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "sender/message.h"
#include "sender/stats.h"

namespace sender {

struct SessionSetup {
  std::string helo_name = "localhost";
  int messages_per_connection = 1;  // >= 1
  bool pipelining = true;           // use PIPELINING when advertised
  // With PIPELINING, write like a bulk sender: each message's content
  // follows its DATA without waiting for the 354, and the next transaction
  // goes out before this one's reply, two in flight, so the server and not
  // the client's round trips sets the pace. A DATA refused after its
  // content was sent ends the session (the server read it as commands).
  bool bulk = false;
  bool bdat = false;            // use BDAT when CHUNKING is advertised
  double starttls_share = 0;    // share of sessions that try STARTTLS
  double early_talk_share = 0;  // sessions sending EHLO before banner
  double abort_share = 0;       // messages abandoned half-way in DATA
  base::Duration phase_timeout = std::chrono::seconds(60);
  base::Duration hold{0};  // idle this long after EHLO (held connections)
  int verbose = 0;         // 1: trace commands; 2: also message content
};

// The run's message budget, shared by all sessions.
class MessageSource {
 public:
  virtual ~MessageSource() = default;
  // Claims one more message; false when the run is over.
  virtual bool Claim() = 0;
  // A claimed message was not accepted: the run may try another in its
  // place (so that a count of messages means accepted ones).
  virtual void Unclaim() {}
};

class Tracer {
 public:
  virtual ~Tracer() = default;
  // One protocol line without its CRLF; from_client tells the direction.
  virtual void Line(uint64_t session, bool from_client,
                    std::string_view line) = 0;
};

class ClientSession {
 public:
  enum class Want { kWrite, kRead, kTls, kHold, kClose };
  static constexpr int kMaxPieces = 12;
  static constexpr size_t kMaxReplyLine = 4096;

  // All pointers must outlive the engine; tracer and progress may be null.
  ClientSession(const SessionSetup* setup, MessageGenerator* gen, Stats* stats,
                Progress* progress, MessageSource* source, Tracer* tracer);

  // Starts a connection attempt at `start`. The caller has already claimed
  // the connection's first message from the MessageSource.
  void Begin(uint64_t session_id, uint64_t seed, base::SteadyTime start);
  // `preface` (e.g. a PROXY header) is written before anything else.
  void OnConnected(base::SteadyTime now, std::string_view preface = {});
  void OnConnectFailed(base::SteadyTime now);
  void OnWritten(base::SteadyTime now);
  void OnBytes(std::string_view data, base::SteadyTime now);
  void OnPeerClosed(base::SteadyTime now);  // EOF or I/O error
  void OnTimeout(base::SteadyTime now);
  void OnTlsDone(bool ok, base::SteadyTime now);
  void OnHoldDone(base::SteadyTime now);
  // Records the session. Call once per Begin, after the socket is closed.
  void Finish(base::SteadyTime now, uint32_t retransmissions);

  Want want() const;
  // REQUIRES: want() == kWrite. Fills up to kMaxPieces views, valid until
  // the next On* call; returns how many.
  int Output(std::string_view* pieces) const;
  // When the current wait (connect, reply, write, handshake) gives up.
  base::SteadyTime deadline() const { return deadline_; }
  base::Duration hold() const { return setup_->hold; }
  // kAccepted while the session has not failed.
  Outcome outcome() const { return outcome_; }

 private:
  enum class Kind : uint8_t {
    kBanner,
    kEhlo,
    kHelo,
    kStartTls,
    kMail,
    kRcpt,
    kData,
    kEod,
    kBdat,
    kRset,
    kQuit
  };
  struct Expect {
    Kind kind;
    uint8_t slot;  // message slot (0/1) for envelope and content replies
    bool chained;  // kEod: the next envelope (or QUIT) was already sent
    base::SteadyTime sent;
  };
  struct Msg {
    bool live = false;
    bool decided = false;  // outcome counted
    int rcpt_ok = 0;
    int rcpt_replies = 0;
    int first_reject = 0;  // first failing RCPT code
    int64_t body_size = 0;
    bool abort = false;
  };
  struct Piece {
    const char* data;  // static piece, or nullptr for scratch
    int scratch;       // 0: cmd_, 1: hdr_
    size_t offset, size;
  };

  void Emit(std::string_view s, bool content);
  void EmitCmd(std::string_view s);  // copied into cmd_
  void Push(Kind k, int slot, bool chained = false);
  void Record(Phase p, base::SteadyTime from, base::SteadyTime to);
  void RecordReply(Phase p, const Expect& e, base::SteadyTime now);
  void HandleLine(std::string_view line, base::SteadyTime now);
  void HandleReply(int code, base::SteadyTime now);
  void OnEnvelopeDone(Msg& m, int slot, base::SteadyTime now);
  void EmitEhlo();
  void AfterGreeting(base::SteadyTime now);
  void StartNext(base::SteadyTime now);
  void BeginMessage(base::SteadyTime now);
  void EmitBdat(int slot);
  void SendContent(int slot, base::SteadyTime now);
  void EmitHeaders(size_t start);
  void Abort(Msg& m, std::string_view body);
  void FailedTransaction(base::SteadyTime now);
  void Decide(Msg& m, Outcome o);
  void FailSession(Outcome o, base::SteadyTime now, bool polite_quit);
  void Close();

  const SessionSetup* setup_;
  MessageGenerator* gen_;
  Stats* stats_;
  Progress* progress_;
  MessageSource* source_;
  Tracer* tracer_;
  std::string ehlo_line_, helo_line_;

  // Per connection.
  uint64_t id_ = 0;
  Rng rng_;
  bool connected_ = false;
  bool closed_ = false;
  bool close_after_write_ = false;
  bool pending_claim_ = false;  // claimed message not yet started
  bool want_tls_ = false, tls_pending_ = false, tls_done_ = false;
  bool hold_pending_ = false, held_ = false;
  bool helo_tried_ = false, start_after_rset_ = false;
  bool ext_pipelining_ = false, ext_chunking_ = false, ext_starttls_ = false,
       ext_smtputf8_ = false;
  bool pipelining_ = false, bdat_ = false, utf8_ = false;
  bool bulk_ = false, quit_sent_ = false;
  int sent_on_conn_ = 0;
  int slot_ = 1;       // slot of the newest message
  int next_rcpt_ = 0;  // non-pipelined: next RCPT to send
  Msg msgs_[2];
  std::vector<Expect> queue_;
  size_t head_ = 0;
  Outcome outcome_ = Outcome::kAccepted;
  base::SteadyTime start_, connected_at_, read_since_, deadline_, tls_sent_;
  int64_t held_ns_ = 0;
  std::string line_;  // partial reply line
  std::string cmd_, hdr_;
  Piece pieces_[kMaxPieces];
  int npieces_ = 0;
  size_t pending_bytes_ = 0;
};

}  // namespace sender
