// A machine idle in a read, packed into a few dozen bytes (connection.h).
//
// The packed form: the deadlines and start (3 x 8 bytes, first, so that
// PackedExpired reads them in place), the start wall time, two bytes of
// flags, the close reason, the client port and address (4 bytes for IPv4),
// the read size, then the tarpit figures (a persona's error sleeps add
// them) only if they are not zero, then the engine's
// parked bytes (ServerSession::Park; their first bytes give their size).
// Everything else a Packable machine has is known: its phase (kReading),
// no tarpit part, outbox, input, direct bytes or wait, not TLS, not closed,
// no limit hit (every limit the machine enforces closes the session).
#include <cstring>

#include "conn/connection.h"

namespace conn {

namespace {

enum Flag : uint16_t {
  kAdmitted = 1 << 0,
  kEarly = 1 << 1,
  kWaitingOnClient = 1 << 2,
  kViaProxy = 1 << 3,
  kEarlyTalker = 1 << 4,
  kTarpitted = 1 << 5,
  kV4 = 1 << 6,
  kTarpitFigures = 1 << 7,
  kThenShift = 8,  // 2 bits: then_
};

template <typename T>
uint8_t* Put(uint8_t* out, const T& v) {
  std::memcpy(out, &v, sizeof v);
  return out + sizeof v;
}

template <typename T>
const uint8_t* Get(const uint8_t* in, T* v) {
  std::memcpy(v, in, sizeof *v);
  return in + sizeof *v;
}

int64_t Rep(base::SteadyTime t) { return t.time_since_epoch().count(); }
base::SteadyTime Time(int64_t rep) {
  return base::SteadyTime(base::SteadyTime::duration(rep));
}

}  // namespace

bool Connection::Packable() const {
  return phase_ == Phase::kReading && parked_ && !engine_ && !tarpit_ &&
         !outbox_ && !input_ && !timing_ && direct_size_ == 0 && !facts_.tls &&
         lingered_ == 0 && limits_hit_ == 0 && facts_.end_wall == 0 &&
         facts_.duration_seconds == 0;
}

size_t Connection::PackedSize() const {
  size_t n = 3 * 8 + 8 + 2 + 1 + 2 + 4;
  n += facts_.client.is_v4() ? 4 : 16;
  if (facts_.delay_seconds != 0 || facts_.replies_stuttered ||
      facts_.slow_reads) {
    n += 8 + 4 + 4;
  }
  return n + smtp::ServerSession::ParkedSize(parked_.get());
}

void Connection::Pack(uint8_t* out) const {
  out = Put(out, Rep(idle_deadline_));
  out = Put(out, Rep(session_deadline_));
  out = Put(out, Rep(start_));
  out = Put(out, facts_.start_wall);
  bool v4 = facts_.client.is_v4();
  bool figures = facts_.delay_seconds != 0 || facts_.replies_stuttered ||
                 facts_.slow_reads;
  uint16_t f = (admitted_ ? kAdmitted : 0) | (early_ ? kEarly : 0) |
               (waiting_on_client_ ? kWaitingOnClient : 0) |
               (facts_.via_proxy ? kViaProxy : 0) |
               (facts_.early_talker ? kEarlyTalker : 0) |
               (facts_.tarpitted ? kTarpitted : 0) | (v4 ? kV4 : 0) |
               (figures ? kTarpitFigures : 0) |
               uint16_t(unsigned(then_) << kThenShift);
  out = Put(out, f);
  out = Put(out, uint8_t(facts_.close_reason));
  out = Put(out, facts_.client_port);
  if (v4) {
    out = Put(out, facts_.client.v4());
  } else {
    out = Put(out, facts_.client.bytes());
  }
  out = Put(out, read_size_);
  if (figures) {
    out = Put(out, facts_.delay_seconds);
    out = Put(out, facts_.replies_stuttered);
    out = Put(out, facts_.slow_reads);
  }
  std::memcpy(out, parked_.get(),
              smtp::ServerSession::ParkedSize(parked_.get()));
}

void Connection::Unpack(const uint8_t* in) {
  int64_t idle, session, start;
  in = Get(in, &idle);
  in = Get(in, &session);
  in = Get(in, &start);
  idle_deadline_ = Time(idle);
  session_deadline_ = Time(session);
  start_ = Time(start);
  in = Get(in, &facts_.start_wall);
  uint16_t f;
  uint8_t reason;
  in = Get(in, &f);
  in = Get(in, &reason);
  in = Get(in, &facts_.client_port);
  if (f & kV4) {
    uint32_t v4;
    in = Get(in, &v4);
    facts_.client = base::IpAddress::FromV4(v4);
  } else {
    std::array<uint8_t, 16> b;
    in = Get(in, &b);
    facts_.client = base::IpAddress::FromV6(b);
  }
  in = Get(in, &read_size_);
  if (f & kTarpitFigures) {
    in = Get(in, &facts_.delay_seconds);
    in = Get(in, &facts_.replies_stuttered);
    in = Get(in, &facts_.slow_reads);
  }
  size_t n = smtp::ServerSession::ParkedSize(in);
  parked_ = std::make_unique<uint8_t[]>(n);
  std::memcpy(parked_.get(), in, n);
  phase_ = Phase::kReading;
  then_ = Then((f >> kThenShift) & 3);
  admitted_ = f & kAdmitted;
  early_ = f & kEarly;
  waiting_on_client_ = f & kWaitingOnClient;
  facts_.via_proxy = f & kViaProxy;
  facts_.early_talker = f & kEarlyTalker;
  facts_.tarpitted = f & kTarpitted;
  facts_.close_reason = CloseReason(reason);
}

std::optional<CloseReason> Connection::PackedExpired(const uint8_t* packed,
                                                     base::SteadyTime now) {
  int64_t idle, session;
  uint16_t f;
  Get(packed, &idle);
  Get(packed + 8, &session);
  Get(packed + 32, &f);
  // As Expired() in phase kReading.
  if (now >= Time(session)) return CloseReason::kSessionTimeout;
  if ((f & kWaitingOnClient) && now >= Time(idle)) {
    return CloseReason::kIdleTimeout;
  }
  return std::nullopt;
}

}  // namespace conn
