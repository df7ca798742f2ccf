// The tarpit policy: pure code that turns what is known of a peer, what its
// session has shown and how loaded the server is into a Plan (delays,
// stutter, receive window, slow reader, caps, verdict). It never touches a
// socket, a timer or the clock: the network layer passes `now` and carries
// the plan out with timers.
//
// Use, per connection (net/):
//   Plan plan = Decide(options, history, session, capacity, now);
//   if (plan.shed) { send 421, close; }
//   account slots: held_count += plan.held, stuttering_count += plan.stutter
//   before each reply: Pacing p = plan.Pace(stage, reply.size(), now, rng);
//     wait p.delay, then send StutterChunks(reply, p) (tarpit/stutter.h)
//   at DATA: clamp the window to plan.receive_window (SO_RCVBUF and
//     TCP_WINDOW_CLAMP), then read as plan.DataRead(now) says
//   final reply: plan.verdict
// Decide again (cheap, no allocation) whenever session evidence changes or
// capacity moves, with session.held / session.stuttering set from the
// previous plan; release the slots the new plan no longer holds.
//
// Threading: everything here is a value; Decide and Plan::Pace are safe to
// call from any thread. A Random is not shared between threads.
#pragma once

#include <array>
#include <cstdint>

#include "base/clock.h"
#include "peer/history.h"
#include "tarpit/options.h"

namespace tarpit {

// What is known of the peer's IP from earlier sessions (this one
// excluded). All zero for a stranger.
using PeerHistory = peer::History;

// What this session has shown so far, and the slots it holds.
struct SessionCounters {
  base::SteadyTime started{};  // when the connection was accepted
  int64_t messages = 0;
  int64_t bare_lf = 0;
  int64_t protocol_errors = 0;
  bool early_talker = false;  // (the flags last: no padding between them)
  // Set from the previous plan: this session already owns a held / stutter
  // slot (and is counted in Capacity), so a full cap does not take it away.
  bool held = false;
  bool stuttering = false;
};

// Server-wide figures at the moment of deciding. A limit of 0 means "no
// limit" for that figure.
struct Capacity {
  int64_t open_connections = 0;  // including this one
  int64_t max_connections = 0;   // server.max_connections
  int64_t held = 0;              // connections whose plan.held is true
  int64_t stuttering = 0;        // connections whose plan.stutter is true
  int64_t memory_bytes = 0;      // e.g. RSS, or bytes of session buffers
  int64_t memory_limit = 0;
};

enum class SenderClass { kNew, kReturning, kBot };
const char* SenderClassName(SenderClass c);

// Where in the dialogue a reply is sent: each stage has its own delay range
// and client timeout.
enum class Stage {
  kGreeting,
  kHelo,  // HELO, EHLO
  kMail,
  kRcpt,
  kData,     // the 354 (or refusal) answering DATA
  kDataEnd,  // the reply after the final "."
  kOther,    // any other reply
};
inline constexpr int kStageCount = 7;

// The client timeout RFC 5321 §4.5.3.2 gives each stage, in seconds
// (HELO/EHLO and the rest have none in the RFC; 300 like Postfix's
// smtp_helo_timeout). The data block (180 s) governs the slow reader.
inline constexpr std::array<double, kStageCount> kClientTimeout = {
    300, 300, 300, 300, 120, 600, 300};
inline constexpr double kDataBlockTimeout = 180;

// A source of uniform numbers in [0, 1); injected so tests are exact.
class Random {
 public:
  virtual ~Random() = default;
  virtual double Uniform() = 0;
};

// A small fast generator (SplitMix64). Not for cryptography.
class SplitMixRandom final : public Random {
 public:
  explicit SplitMixRandom(uint64_t seed) : state_(seed) {}
  double Uniform() override;
  uint64_t Next();

 private:
  uint64_t state_;
};

// How to send one reply.
struct Pacing {
  base::Duration delay{};     // wait before the first byte
  int chunk_bytes = 0;        // 0: send the reply in one write
  base::Duration interval{};  // wait between chunks
};

struct Plan {
  // Capacity: answer 421 now and close. Everything else is then moot.
  bool shed = false;
  // The connection is tarpitted and owns a held slot. False when the tarpit
  // is off, the held cap is reached, or we are shedding: then every Pacing
  // is prompt.
  bool held = false;
  // Replies are stuttered; the connection owns a stutter slot.
  bool stutter = false;
  // Load is past degrade_at: cheap answers only.
  bool degraded = false;

  SenderClass sender_class = SenderClass::kNew;
  Mode mode = Mode::kKeepTalking;  // effective: never kEscalate
  double score = 0;
  double level = 0;  // 0..1

  Verdict verdict = Verdict::kDefault;
  // If the client speaks before the greeting, answer 554 instead of 220
  // (and mark it in the ledger either way).
  bool reject_early_talker = false;

  // Delay range per stage in seconds, already scaled by level and load and
  // capped at the stage ceiling.
  std::array<DelayRange, kStageCount> delays{};
  // Per-stage ceiling in seconds (kKeepTalking: a delay plus its stutter
  // never exceeds it).
  std::array<double, kStageCount> ceilings{};
  int stutter_bytes = 0;
  base::Duration stutter_interval{};
  base::SteadyTime stutter_until = base::SteadyTime::max();
  // kKeepTalking: replies are prompt from here on.
  base::SteadyTime hold_deadline = base::SteadyTime::max();

  // During DATA: the receive window to clamp to (0 = leave alone), and the
  // slow reader (use DataRead(now), which honours the hold deadline).
  int receive_window = 0;
  int data_read_bytes = 0;
  base::Duration data_read_interval{};

  // The pacing of one reply of `reply_bytes` bytes at `stage`, sent at
  // `now`. Draws one number from `random` when the stage has a range. In
  // kKeepTalking delay + stutter time stays within the stage ceiling and the
  // hold deadline (the stutter is sped up if it alone would not).
  Pacing Pace(Stage stage, size_t reply_bytes, base::SteadyTime now,
              Random& random) const;

  // The slow reader during DATA at `now`: read at most `bytes` per
  // `interval`. {0, 0} means read freely (not held, degraded, or past the
  // hold deadline in kKeepTalking).
  struct ReadPacing {
    int bytes = 0;
    base::Duration interval{};
  };
  ReadPacing DataRead(base::SteadyTime now) const;

  bool operator==(const Plan&) const = default;
};

// The reputation score and class of a peer given its history and session.
double Score(const Options& options, const PeerHistory& history,
             const SessionCounters& session);
double EvidenceScore(const Options& options, const PeerHistory& history,
                     const SessionCounters& session);
double LevelFromScore(const Options& options, double score);

Plan Decide(const Options& options, const PeerHistory& history,
            const SessionCounters& session, const Capacity& capacity,
            base::SteadyTime now);

}  // namespace tarpit
