#include "conn/connection.h"

#include <algorithm>
#include <chrono>

#include "base/metrics.h"
#include "conn/outbox.h"
#include "conn/plan_table.h"
#include "conn/proxy.h"

namespace conn {

using base::Count;
using base::Counter;
using smtp::Reply;
using Kind = Command::Kind;

namespace {

smtp::FinalReply ToFinalReply(tarpit::Verdict v, smtp::FinalReply dflt) {
  switch (v) {
    case tarpit::Verdict::kAccept:
      return smtp::FinalReply::kAccept;
    case tarpit::Verdict::kTempfail:
      return smtp::FinalReply::kTempfail;
    case tarpit::Verdict::kReject:
      return smtp::FinalReply::kReject;
    case tarpit::Verdict::kDefault:
      break;
  }
  return dflt;
}

}  // namespace

// The tarpit's part of a connection: its plan and the slots it holds.
struct Connection::Tarpit {
  explicit Tarpit(const Env* e) : env(e) {}
  Tarpit(const Tarpit&) = delete;
  Tarpit& operator=(const Tarpit&) = delete;
  ~Tarpit() {
    Release();
    Drop();
  }
  void Adopt(const tarpit::Plan& p) {
    Release();
    Drop();
    shared = env->plans ? env->plans->Acquire(p) : new tarpit::Plan(p);
    hold_deadline = p.hold_deadline;
    stutter_until = p.stutter_until;
    counters.held = p.held;
    counters.stuttering = p.stutter;
    if (p.held) {
      env->gauges->held.fetch_add(1, std::memory_order_relaxed);
      base::g_held_connections.fetch_add(1, std::memory_order_relaxed);
    }
    if (p.stutter)
      env->gauges->stuttering.fetch_add(1, std::memory_order_relaxed);
  }
  // The slots the plan holds.
  void Release() {
    if (counters.held) {
      env->gauges->held.fetch_sub(1, std::memory_order_relaxed);
      base::g_held_connections.fetch_sub(1, std::memory_order_relaxed);
    }
    if (counters.stuttering) {
      env->gauges->stuttering.fetch_sub(1, std::memory_order_relaxed);
    }
    counters.held = counters.stuttering = false;
  }
  // The plan itself.
  void Drop() {
    if (shared && env->plans) {
      env->plans->Release(shared);
    } else {
      delete shared;  // this connection's own copy (no table)
    }
    shared = nullptr;
  }
  // The plan's flags, ranges and verdict (its per-connection times are
  // cleared when it is shared: use Full() to pace).
  const tarpit::Plan& plan() const { return *shared; }
  // The whole plan, as Decide made it (a copy on the stack).
  tarpit::Plan Full() const {
    tarpit::Plan p = *shared;
    p.hold_deadline = hold_deadline;
    p.stutter_until = stutter_until;
    return p;
  }
  // The gauges and the thread's PlanTable (env->plans; without one, as in
  // some tests, the plan is this connection's own heap copy).
  const Env* env;
  // The plan is shared with the thread's other connections that have the
  // same one (PlanTable): a held connection keeps 8 bytes of it, not 256.
  const tarpit::Plan* shared = nullptr;
  base::SteadyTime hold_deadline = base::SteadyTime::max();
  base::SteadyTime stutter_until = base::SteadyTime::max();
  tarpit::SessionCounters counters;
  // (No copy of the peer's history: Decide asks the host again, so a held
  // connection is 88 bytes here, one malloc size class below 96.)
  base::Duration read_pause{};  // the slow reader's pause after this read
  bool window_set = false;
};

Connection::Connection(const Env* env) : env_(env) {
  // A held connection's tarpit part stays in glibc's 96-byte size class
  // (issue 17: <= 512 bytes per connection held in a delay).
  static_assert(sizeof(Tarpit) <= 88);
}
Connection::~Connection() = default;

std::string_view Connection::sending() const {
  if (outbox_) return outbox_->Pending();
  return std::string_view(direct_data_, direct_size_);
}

std::optional<tarpit::Plan> Connection::plan() const {
  if (!tarpit_) return std::nullopt;
  return tarpit_->Full();
}

bool Connection::held() const { return tarpit_ && tarpit_->plan().held; }

peer::SessionSummary Connection::Summary() const {
  peer::SessionSummary s;
  if (engine_) {
    static_cast<peer::ProtocolFacts&>(s) = engine_->facts();
  } else if (parked_) {
    static_cast<peer::ProtocolFacts&>(s) =
        smtp::ServerSession::ParkedFacts(parked_.get());
  }
  static_cast<peer::ConnectionFacts&>(s) = facts_;
  s.limits_hit += limits_hit_;
  return s;
}

smtp::ServerSession& Connection::Engine() {
  if (!engine_) {  // parked (Admit makes the engine before any use)
    engine_ = std::make_unique<smtp::ServerSession>(
        env_->smtp, env_->output, facts_.client.ToString(), 0);
    engine_->Unpark(parked_.get());
    parked_.reset();
  }
  return *engine_;
}

void Connection::Park() {
  if (engine_ && engine_->Parkable()) {
    parked_ = engine_->Park();
    engine_.reset();
  }
}

// --- Commands ---------------------------------------------------------------

Command Connection::Read(size_t bytes, int window) {
  waiting_on_client_ = true;
  read_size_ = uint32_t(bytes);
  Command c;
  c.kind = Kind::kRead;
  c.bytes = bytes;
  c.window = window;
  return c;
}

Command Connection::Send(std::string_view data, bool wait) {
  // The idle clock starts before the bytes leave (the client may answer at
  // once); a send waiting for room keeps the time of the last progress.
  if (!wait) Touch();
  waiting_on_client_ = wait;
  Command c;
  c.kind = Kind::kSend;
  c.data = data;
  c.wait = wait;
  // The outbox keeps its bytes until they are sent; direct bytes are in
  // the thread's buffer, which the next connection reuses.
  c.stable = outbox_ != nullptr;
  return c;
}

Command Connection::Wait(base::Duration d, bool peek) {
  waiting_on_client_ = false;
  Park();
  if (d > base::Duration::zero()) {  // every wait is the tarpit's
    timing_ = true;
    wait_started_ = env_->clock->Now();
    wait_planned_ = d;
  }
  Command c;
  c.kind = Kind::kWait;
  c.delay = std::max(d, base::Duration::zero());
  c.peek = peek;
  return c;
}

void Connection::EndWait(bool fired) {
  if (!timing_) return;
  timing_ = false;
  base::Duration served = wait_planned_;
  if (!fired) {
    served = std::clamp(env_->clock->Now() - wait_started_,
                        base::Duration::zero(), wait_planned_);
  }
  double secs = std::chrono::duration<double>(served).count();
  facts_.delay_seconds += secs;
  Count(Counter::kTarpitDelayUs, uint64_t(secs * 1e6));
}

std::optional<CloseReason> Connection::Expired(base::SteadyTime now) const {
  if (phase_ == Phase::kClosed) return std::nullopt;
  if (now >= session_deadline_) return CloseReason::kSessionTimeout;
  if (waiting_on_client_ && now >= idle_deadline_) {
    return CloseReason::kIdleTimeout;
  }
  return std::nullopt;
}

// --- Start: PROXY header, caps, the tarpit's plan, the banner ---------------

Command Connection::Start(const base::IpAddress& client, uint16_t port,
                          bool trusted_proxy) {
  const auto& lim = *env_->limits;
  env_->gauges->open.fetch_add(1, std::memory_order_relaxed);
  start_ = env_->clock->Now();
  facts_.start_wall = env_->clock->WallSeconds();
  facts_.client = client;
  facts_.client_port = port;
  session_deadline_ = start_ + lim.session_timeout;
  if (trusted_proxy) {
    // A trusted proxy must start with a PROXY header, before our banner.
    phase_ = Phase::kProxy;
    input_ = std::make_unique<std::string>();
    idle_deadline_ = start_ + lim.proxy_timeout;
    Command c = Read(512);
    return c;
  }
  return Admit();
}

Command Connection::Admit() {
  const auto& lim = *env_->limits;
  const auto& tp = *env_->tarpit;
  // Queue ids vary per session and per process (the thread's random
  // source is seeded per process).
  uint64_t seed = uint64_t(env_->random->Uniform() * 0x1p53) << 11 ^
                  uint64_t(env_->random->Uniform() * 0x1p53);
  engine_ = std::make_unique<smtp::ServerSession>(
      env_->smtp, env_->output, facts_.client.ToString(), seed);
  admitted_ = true;
  int per_ip = env_->host->Enter(facts_.client);
  Reply refuse = Reply::kCount;
  CloseReason why = CloseReason::kCapTotal;
  if (env_->gauges->open.load(std::memory_order_relaxed) >
      lim.max_connections) {
    refuse = Reply::kCapTotal;
    Count(Counter::kConnectionsRefusedTotalCap);
  } else if (per_ip > lim.max_connections_per_ip) {
    refuse = Reply::kCapPerIp;
    why = CloseReason::kCapPerIp;
    Count(Counter::kConnectionsRefusedPerIpCap);
  }
  // The tarpit decides here, and again if the client talks early. Exempt
  // networks (monitoring) are never tarpitted nor shed.
  bool exempt = tp.enabled && tarpit::Exempt(tp, facts_.client);
  if (exempt) Count(Counter::kTarpitExempt);
  if (refuse == Reply::kCount && tp.enabled && !exempt) {
    tarpit_ = std::make_unique<Tarpit>(env_);
    tarpit_->counters.started = start_;
    Decide();
    if (tarpit_->plan().shed) {
      refuse = Reply::kCapTotal;
      Count(Counter::kTarpitShed);
    } else if (tarpit_->plan().held) {
      facts_.tarpitted = true;
      Count(Counter::kTarpitSessions);
    }
  }
  if (refuse != Reply::kCount) {
    ++limits_hit_;
    return LastWords(refuse, why);
  }
  early_ = input_ && !input_->empty();  // bytes came with the PROXY header
  if (tarpit_ && tarpit_->plan().held) {
    // Wait out the greeting delay, then see whether the client spoke first
    // (postscreen's pregreet test).
    auto pacing = tarpit_->Full().Pace(tarpit::Stage::kGreeting, 64,
                                       env_->clock->Now(), *env_->random);
    phase_ = Phase::kGreetDelay;
    return Wait(pacing.delay, /*peek=*/true);
  }
  if (const double pause = env_->smtp->persona.rules.greet_pause; pause > 0) {
    // The persona's own pause before its banner (Sendmail's greet_pause):
    // early talk is seen as in the tarpit's delay, but it is not tarpit time.
    phase_ = Phase::kGreetDelay;
    Command c = Wait(std::chrono::duration_cast<base::Duration>(
                         std::chrono::duration<double>(pause)),
                     /*peek=*/true);
    timing_ = false;
    return c;
  }
  // Without a greeting delay the banner leaves at once: early talk is seen
  // only with a PROXY header (above) or by a pregreet wait.
  return Greet();
}

// (Re)decides the tarpit plan from what is known now.
void Connection::Decide() {
  const auto& g = *env_->gauges;
  tarpit::Capacity cap;
  cap.open_connections = g.open.load(std::memory_order_relaxed);
  cap.max_connections = env_->limits->max_connections;
  cap.held = g.held.load(std::memory_order_relaxed);
  cap.stuttering = g.stuttering.load(std::memory_order_relaxed);
  tarpit_->Adopt(tarpit::Decide(*env_->tarpit,
                                env_->host->History(facts_.client),
                                tarpit_->counters, cap, env_->clock->Now()));
  Engine().SetFinalReply(
      ToFinalReply(tarpit_->plan().verdict, env_->smtp->final_reply));
}

Command Connection::Greet() {
  if (early_) {
    facts_.early_talker = true;
    Count(Counter::kEarlyTalkers);
  }
  Engine().SetSenderEvidence(facts_.early_talker, facts_.tarpitted);
  bool refuse = early_ && tarpit_ && tarpit_->plan().reject_early_talker;
  smtp::Step step = refuse ? Engine().GreetRefused()
                           : Engine().Greet(env_->clock->WallSeconds());
  // A paced greeting has waited its delay already.
  return Emit(step, Then::kRead, /*skip_first_delay=*/true);
}

// --- The read / feed / send loop --------------------------------------------

Command Connection::ReadNext() {
  if (input_ && !input_->empty()) return Process(*input_);
  input_.reset();
  Engine().Trim();
  phase_ = Phase::kReading;
  size_t want = env_->limits->read_size;
  int window = 0;
  if (tarpit_ && tarpit_->plan().held && Engine().in_body()) {
    // The slow reader: a small window and small, spaced reads, so the
    // sender's kernel holds and retransmits its data.
    auto rp = tarpit_->Full().DataRead(env_->clock->Now());
    if (rp.bytes > 0) {
      if (!tarpit_->window_set && tarpit_->plan().receive_window > 0) {
        window = tarpit_->plan().receive_window;
        tarpit_->window_set = true;
      }
      want = std::min(want, size_t(rp.bytes));
      tarpit_->read_pause = rp.interval;
      ++facts_.slow_reads;
      Count(Counter::kTarpitSlowReads);
    }
  }
  Park();
  return Read(want, window);
}

Command Connection::Process(std::string_view input) {
  smtp::Step step = Engine().Feed(input, env_->clock->WallSeconds());
  CountEvents(step.events);
  std::string_view rest = input.substr(step.consumed);
  Then then = Then::kRead;
  if (step.action == smtp::Action::kContinue && !rest.empty()) {
    // Flow control: the rest waits until these replies are out.
    if (input_ && input.data() == input_->data()) {
      input_->erase(0, step.consumed);
    } else {
      input_ = std::make_unique<std::string>(rest);
    }
  } else {
    // STARTTLS discards what followed it (RFC 3207); a close ends reading.
    input_.reset();
  }
  if (step.action == smtp::Action::kClose) {
    facts_.close_reason = step.close_reason;
    then = Then::kClose;
  } else if (step.action == smtp::Action::kStartTls) {
    then = Then::kStartTls;
  }
  return Emit(step, then, false);
}

// Sends a step's replies: straight from the thread's buffer when unpaced
// (copied only if the socket does not take them at once), or one by one as
// the tarpit's plan paces each by its stage.
Command Connection::Emit(const smtp::Step& step, Then then,
                         bool skip_first_delay) {
  then_ = then;
  phase_ = Phase::kSending;
  outbox_.reset();
  direct_size_ = 0;
  // The persona's error sleeps (Postfix past its soft error limit) are
  // waits of the tarpit's timer too: a paced outbox, held or not.
  bool sleeps = std::any_of(step.replies.begin(), step.replies.end(),
                            [](const smtp::ReplyMark& m) { return m.sleeps; });
  if ((tarpit_ && tarpit_->plan().held) || sleeps) {
    auto sleep =
        std::chrono::milliseconds(env_->smtp->persona.rules.error_sleep_ms);
    outbox_ = std::make_unique<Outbox>(step.bytes, step.replies,
                                       skip_first_delay, sleep);
    return NextChunk();
  }
  if (step.bytes.empty()) return AfterSent();
  direct_data_ = step.bytes.data();
  direct_size_ = uint32_t(step.bytes.size());
  return Send(step.bytes, false);
}

Command Connection::NextChunk() {
  // An unpaced outbox (the rest of a write the socket did not take) never
  // asks the plan; a prompt one stands in when there is no tarpit.
  static const tarpit::Plan kPrompt;
  Outbox::Next next = outbox_->Advance(tarpit_ ? tarpit_->Full() : kPrompt,
                                       env_->clock->Now(), *env_->random);
  if (next.stuttered) {
    ++facts_.replies_stuttered;
    Count(Counter::kTarpitStuttered);
  }
  if (next.done) {
    outbox_.reset();
    return AfterSent();
  }
  if (next.wait > base::Duration::zero()) return Wait(next.wait);
  return Send(outbox_->Pending(), false);
}

Command Connection::OnSent(size_t n) {
  if (phase_ == Phase::kLinger || phase_ == Phase::kClosed) return CloseNow();
  if (!outbox_) {
    std::string_view direct(direct_data_, direct_size_);
    if (n >= direct.size()) {
      direct_size_ = 0;
      return phase_ == Phase::kLastWords ? Close() : AfterSent();
    }
    // The socket is full: keep the rest (the thread's buffer moves on).
    if (n > 0) Touch();  // progress
    outbox_ = std::make_unique<Outbox>(direct.substr(n));
    direct_size_ = 0;
    return Send(outbox_->Pending(), true);
  }
  outbox_->Sent(n);
  if (!outbox_->Pending().empty()) {
    if (n > 0) Touch();  // progress
    return Send(outbox_->Pending(), true);
  }
  if (phase_ == Phase::kLastWords) {
    outbox_.reset();
    return Close();
  }
  return NextChunk();
}

Command Connection::AfterSent() {
  switch (then_) {
    case Then::kClose:
      return Close();
    case Then::kStartTls:
      phase_ = Phase::kTls;
      Touch();
      waiting_on_client_ = true;  // the handshake is the client's to finish
      return Command{Kind::kStartTls};
    case Then::kRead:
      break;
  }
  if (tarpit_ && tarpit_->read_pause > base::Duration::zero()) {
    base::Duration d = tarpit_->read_pause;
    tarpit_->read_pause = {};
    phase_ = Phase::kPause;
    return Wait(d);
  }
  return ReadNext();
}

// --- Events -----------------------------------------------------------------

Command Connection::OnRead(std::string_view bytes) {
  switch (phase_) {
    case Phase::kProxy: {
      input_->append(bytes);
      ProxyHeader h;
      size_t used = 0;
      auto r = ParseProxyHeader(*input_, &h, &used);
      if (r == ProxyParse::kNeedMore && input_->size() < 4096) return Read(512);
      if (r != ProxyParse::kDone) {
        Count(Counter::kProxyErrors);
        facts_.close_reason = CloseReason::kProxyError;
        return CloseNow();
      }
      Count(Counter::kProxyHeaders);
      if (!h.local) {
        facts_.client = h.source;
        facts_.client_port = h.source_port;
        facts_.via_proxy = true;
      }
      input_->erase(0, used);
      return Admit();
    }
    case Phase::kLinger:
      lingered_ += uint32_t(bytes.size());
      if (lingered_ >= env_->limits->linger_bytes) return CloseNow();
      return Read(env_->limits->read_size);
    case Phase::kReading:
      Touch();
      return Process(bytes);
    default:
      return CloseNow();  // not reading: a broken executor
  }
}

Command Connection::OnTimer(bool input_waiting) {
  EndWait(/*fired=*/true);
  if (phase_ == Phase::kClosed) return CloseNow();
  if (phase_ == Phase::kGreetDelay) {
    early_ = early_ || input_waiting;
    if (early_ && tarpit_) {  // not with only the persona's greet_pause
      tarpit_->counters.early_talker = true;
      Decide();
    }
    return Greet();
  }
  if (phase_ == Phase::kPause) return ReadNext();
  return Send(outbox_->Pending(), false);
}

Command Connection::OnTlsDone(bool ok) {
  if (!ok) {
    Count(Counter::kTlsFailures);
    facts_.close_reason = CloseReason::kTlsFailed;
    return CloseNow();
  }
  Count(Counter::kStartTls);
  facts_.tls = true;
  Engine().TlsStarted();
  return ReadNext();
}

Command Connection::CloseNow() {
  EndWait(/*fired=*/false);
  if (phase_ != Phase::kClosed) {
    phase_ = Phase::kClosed;
    waiting_on_client_ = false;
    outbox_.reset();
    input_.reset();
    tarpit_.reset();  // releases its slots
    if (admitted_) env_->host->Leave(facts_.client);
    env_->gauges->open.fetch_sub(1, std::memory_order_relaxed);
    facts_.end_wall = env_->clock->WallSeconds();
    facts_.duration_seconds =
        std::chrono::duration<double>(env_->clock->Now() - start_).count();
    Count(Counter::kSessions);
  }
  return Command{Kind::kClose};
}

void Connection::CountEvents(const smtp::Events& e) {
  auto add = [](Counter c, uint64_t n) {
    if (n) Count(c, n);
  };
  add(Counter::kCommands, e.commands);
  add(Counter::kUnknownCommands, e.unknown_commands);
  add(Counter::kSyntaxErrors, e.syntax_errors);
  add(Counter::kBadSequence, e.bad_sequence);
  add(Counter::kLongLines, e.long_lines);
  add(Counter::kRecipients, e.recipients);
  add(Counter::kTooManyRecipients, e.too_many_recipients);
  add(Counter::kTooBig, e.too_big);
  add(Counter::kAuthAttempts, e.auth_attempts);
  add(Counter::kMessages, e.messages);
  add(Counter::kMessagesAccepted, e.accepted);
  add(Counter::kMessagesTempfailed, e.tempfailed);
  add(Counter::kMessagesRejected, e.rejected);
  add(Counter::kLimitErrors, e.limit_errors);
  add(Counter::kLimitCommands, e.limit_commands);
  add(Counter::kBytes, e.bytes);
  add(Counter::kBareLf, e.bare_lf);
  add(Counter::kBareCr, e.bare_cr);
}

}  // namespace conn
