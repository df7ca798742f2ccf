// How a connection ends: the client leaves (OnEof, OnError), a deadline or
// shutdown cuts it short (OnAbort: the 421 as last words), or we end it
// (Close: the lingering close). CloseNow, which frees the connection's
// resources, stays in connection.cc beside what it frees.
#include "base/metrics.h"
#include "conn/connection.h"

namespace conn {

using base::Count;
using base::Counter;
using smtp::Reply;
using Kind = Command::Kind;

namespace {

// Whether we ended the session (the client may still be sending): then the
// close lingers, so that a reset cannot destroy our last reply.
bool ClosedByUs(CloseReason r) {
  switch (r) {
    case CloseReason::kQuit:  // the client closes next; nothing is unread
    case CloseReason::kClientClosed:
    case CloseReason::kIoError:
    case CloseReason::kProxyError:
    case CloseReason::kTlsFailed:
    case CloseReason::kShutdown:
      return false;
    default:
      return true;
  }
}

}  // namespace

Command Connection::OnEof() {
  if (phase_ == Phase::kReading || phase_ == Phase::kProxy ||
      phase_ == Phase::kSending) {
    facts_.close_reason = CloseReason::kClientClosed;
  }
  return CloseNow();
}

Command Connection::OnError() {
  if (phase_ == Phase::kReading) {
    facts_.close_reason = CloseReason::kIoError;
  } else if (phase_ == Phase::kSending || phase_ == Phase::kProxy) {
    facts_.close_reason = CloseReason::kClientClosed;  // it went away
  }
  return CloseNow();
}

Command Connection::OnHalfClosed(bool ok) {
  if (!ok) return CloseNow();
  return Read(env_->limits->read_size);
}

Command Connection::OnAbort(CloseReason why) {
  EndWait(/*fired=*/false);
  switch (phase_) {
    case Phase::kClosed:
    case Phase::kLinger:
    case Phase::kLastWords:
      return CloseNow();
    case Phase::kProxy:
      facts_.close_reason = why;
      return Close();
    case Phase::kTls:  // no way to say anything mid-handshake
      Count(Counter::kTlsFailures);
      facts_.close_reason = why;
      return Close();
    default:
      break;
  }
  Reply reply = Reply::kShutdown;
  if (why == CloseReason::kIdleTimeout) {
    reply = Reply::kIdleTimeout;
    Count(Counter::kIdleTimeouts);
  } else if (why == CloseReason::kSessionTimeout) {
    reply = Reply::kSessionTimeout;
    Count(Counter::kLimitSessionTime);
    ++limits_hit_;
  }
  return LastWords(reply, why);
}

// A 421 (or a cap's refusal) and then the close. Whatever was still to be
// sent is dropped. The reply gets one attempt now and, if the socket is
// full, at most the lingering time.
Command Connection::LastWords(Reply reply, CloseReason why) {
  facts_.close_reason = why;
  outbox_.reset();
  input_.reset();
  phase_ = Phase::kLastWords;
  then_ = Then::kClose;
  auto now = env_->clock->Now();
  smtp::Step step = Engine().Abort(reply);
  // Postfix's idle-timeout 421 goes through smtpd_chat_reply(): past the
  // soft error limit it sleeps first, as every reply then does (the
  // session marked the sleeps). Not for a shutdown or a cap.
  base::Duration sleep{};
  const auto error_sleep =
      std::chrono::milliseconds(env_->smtp->persona.rules.error_sleep_ms);
  if (why == CloseReason::kIdleTimeout) {
    for (const auto& m : step.replies) sleep += m.sleeps * error_sleep;
  }
  session_deadline_ =
      std::min(session_deadline_, now + env_->limits->linger_time + sleep);
  idle_deadline_ = now + env_->limits->linger_time + sleep;
  if (sleep > base::Duration::zero()) {
    outbox_ = std::make_unique<Outbox>(step.bytes, step.replies,
                                       /*skip_first_delay=*/false, error_sleep);
    return NextChunk();
  }
  std::string_view bytes = step.bytes;
  direct_data_ = bytes.data();
  direct_size_ = uint32_t(bytes.size());
  return Send(bytes, false);
}

// Ends the session: a lingering close if we ended it (FIN first, then read
// and discard what the client still sends, for a second or 1 MiB at most),
// so that a reset cannot destroy our last replies before the client reads
// them; otherwise at once.
Command Connection::Close() {
  if (!ClosedByUs(facts_.close_reason) || *env_->stopping) return CloseNow();
  phase_ = Phase::kLinger;
  outbox_.reset();
  input_.reset();
  // Deadlines first: the client sees our FIN at once and may act on it.
  auto now = env_->clock->Now();
  idle_deadline_ = now + env_->limits->linger_time;
  session_deadline_ = std::min(session_deadline_, idle_deadline_);
  waiting_on_client_ = true;
  return Command{Kind::kHalfClose};
}

}  // namespace conn
