// Parking an idle session (server_session.h: Parkable, Park, Unpark): the
// state a later command depends on, packed as LEB128 integers and
// length-prefixed names. What is not packed is either fixed by Parkable()
// (no partial line, transaction, BDAT, AUTH exchange, capture or Exim RCPT
// reply list) or set again before it is read (the body scanner at DATA, the
// BDAT counters at the first chunk, events_ at each step).
#include <cstring>

#include "smtp/server_session.h"

namespace smtp {

namespace {

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out->push_back(char(v));
}

void PutBytes(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

void PutNames(std::string* out, const std::vector<peer::NameCount>& names) {
  PutVarint(out, names.size());
  for (const auto& n : names) {
    PutBytes(out, n.name);
    PutVarint(out, n.count);
  }
}

// Reads what the Put functions wrote (our own bytes: no bounds to check
// beyond the contract of Park).
struct Reader {
  const uint8_t* p;
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = *p++;
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    return v;
  }
  uint8_t Byte() { return *p++; }
  std::string Bytes() {
    size_t n = size_t(Varint());
    std::string s(reinterpret_cast<const char*>(p), n);
    p += n;
    return s;
  }
  std::vector<peer::NameCount> Names() {
    std::vector<peer::NameCount> v(static_cast<size_t>(Varint()));
    for (auto& n : v) {
      n.name = Bytes();
      n.count = uint32_t(Varint());
    }
    return v;
  }
};

void PutFacts(std::string* out, const peer::ProtocolFacts& f) {
  PutNames(out, f.helo_names);
  PutNames(out, f.mail_from_domains);
  PutNames(out, f.rcpt_domains);
  for (uint64_t v :
       {uint64_t(f.transactions), uint64_t(f.messages), uint64_t(f.recipients),
        f.bytes, uint64_t(f.commands), uint64_t(f.auth_attempts),
        uint64_t(f.pipelined_without_ehlo), uint64_t(f.bare_lf),
        uint64_t(f.bare_cr), uint64_t(f.unknown_commands),
        uint64_t(f.protocol_errors), uint64_t(f.limits_hit)}) {
    PutVarint(out, v);
  }
  PutVarint(out, f.trap_rcpts.size());
  for (const auto& r : f.trap_rcpts) PutBytes(out, r);
}

peer::ProtocolFacts GetFacts(Reader& r) {
  peer::ProtocolFacts f;
  f.helo_names = r.Names();
  f.mail_from_domains = r.Names();
  f.rcpt_domains = r.Names();
  f.transactions = uint32_t(r.Varint());
  f.messages = uint32_t(r.Varint());
  f.recipients = uint32_t(r.Varint());
  f.bytes = r.Varint();
  f.commands = uint32_t(r.Varint());
  f.auth_attempts = uint32_t(r.Varint());
  f.pipelined_without_ehlo = r.Varint() != 0;
  f.bare_lf = uint32_t(r.Varint());
  f.bare_cr = uint32_t(r.Varint());
  f.unknown_commands = uint32_t(r.Varint());
  f.protocol_errors = uint32_t(r.Varint());
  f.limits_hit = uint32_t(r.Varint());
  f.trap_rcpts.resize(size_t(r.Varint()));
  for (auto& t : f.trap_rcpts) t = r.Bytes();
  return f;
}

enum Flag : uint8_t {
  kEarlyTalker = 1,
  kTarpitted = 2,
  kEhlo = 4,
  kTlsActive = 8,
  kEximRcptMixed = 16,
  kCaptureOverflow = 32,
  kEximSynced = 64,
  kInputPending = 128,
};

enum Flag2 : uint8_t {
  kNullServer = 1,
};

// The size prefix: the total size, itself included, as a 2-byte integer
// (a parked session is a few hundred bytes at most: names are capped at
// kMaxNames x kMaxNameLength per list).
constexpr size_t kHeader = 2;

}  // namespace

bool ServerSession::Parkable() const {
  bool idle_state = state_ == State::kFresh || state_ == State::kGreeted ||
                    state_ == State::kRefused;
  return idle_state && carry_.empty() && !capture_ && !bdat_open_ &&
         !truncated_pending_ && auth_steps_ == 0 && exim_rcpt_reply_.empty() &&
         txn_.rcpts == 0 && txn_.bdat_total == 0 &&
         txn_.bdat_error == Reply::kCount && txn_.bdat_bare_lf == 0 &&
         txn_.bdat_last_byte == 0;
}

std::unique_ptr<uint8_t[]> ServerSession::Park() const {
  std::string b(kHeader, '\0');
  uint8_t flags =
      (early_talker_ ? kEarlyTalker : 0) | (tarpitted_ ? kTarpitted : 0) |
      (ehlo_ ? kEhlo : 0) | (tls_active_ ? kTlsActive : 0) |
      (exim_rcpt_mixed_ ? kEximRcptMixed : 0) |
      (capture_overflow_ ? kCaptureOverflow : 0) |
      (exim_synced_ ? kEximSynced : 0) | (input_pending_ ? kInputPending : 0);
  const uint8_t flags2 = null_server_ ? kNullServer : 0;
  for (uint8_t v : {flags, flags2, uint8_t(state_), uint8_t(final_reply_),
                    uint8_t(close_reason_), exim_unknown_, exim_synprot_}) {
    b.push_back(char(v));
  }
  uint64_t ids = ids_.state();
  b.append(reinterpret_cast<const char*>(&ids), sizeof ids);
  PutVarint(&b, declared_size_);
  PutVarint(&b, errors_);
  PutVarint(&b, junk_);
  PutVarint(&b, chunk_.size);
  PutFacts(&b, facts_);
  b[0] = char(uint8_t(b.size()));
  b[1] = char(uint8_t(b.size() >> 8));
  auto out = std::make_unique<uint8_t[]>(b.size());
  std::memcpy(out.get(), b.data(), b.size());
  return out;
}

size_t ServerSession::ParkedSize(const uint8_t* parked) {
  return size_t(parked[0]) | size_t(parked[1]) << 8;
}

void ServerSession::Unpark(const uint8_t* parked) {
  Reader r{parked + kHeader};
  uint8_t flags = r.Byte();
  early_talker_ = flags & kEarlyTalker;
  tarpitted_ = flags & kTarpitted;
  ehlo_ = flags & kEhlo;
  tls_active_ = flags & kTlsActive;
  exim_rcpt_mixed_ = flags & kEximRcptMixed;
  capture_overflow_ = flags & kCaptureOverflow;
  exim_synced_ = flags & kEximSynced;
  input_pending_ = flags & kInputPending;
  null_server_ = r.Byte() & kNullServer;
  state_ = State(r.Byte());
  final_reply_ = FinalReply(r.Byte());
  close_reason_ = CloseReason(r.Byte());
  exim_unknown_ = r.Byte();
  exim_synprot_ = r.Byte();
  uint64_t ids;
  std::memcpy(&ids, r.p, sizeof ids);
  r.p += sizeof ids;
  ids_.Restore(ids);
  declared_size_ = r.Varint();
  errors_ = uint32_t(r.Varint());
  junk_ = uint32_t(r.Varint());
  chunk_.size = r.Varint();
  facts_ = GetFacts(r);
}

peer::ProtocolFacts ServerSession::ParkedFacts(const uint8_t* parked) {
  // Skip the header, the seven bytes and the queue id state, then the four
  // integers before the facts.
  Reader r{parked + kHeader + 7 + sizeof(uint64_t)};
  for (int i = 0; i < 4; ++i) r.Varint();
  return GetFacts(r);
}

}  // namespace smtp
