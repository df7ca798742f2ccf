// Message content for smtpsend: a generator built once per thread that hands
// out pre-built static pieces (envelope commands, body) and formats the few
// per-message bytes (headers) into a caller-owned, pre-reserved buffer, so
// that producing a message allocates nothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace sender {

// A small fast PRNG (splitmix64): deterministic for tests, no locks.
class Rng {
 public:
  explicit Rng(uint64_t seed = 1) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Uniform() { return double(Next() >> 11) * 0x1.0p-53; }  // [0, 1)
  bool Chance(double share) { return share > 0 && Uniform() < share; }
  // Uniform in [lo, hi].
  int64_t Between(int64_t lo, int64_t hi) {
    return hi <= lo ? lo : lo + int64_t(Next() % uint64_t(hi - lo + 1));
  }

 private:
  uint64_t s_;
};

struct MessageShape {
  std::string from = "smtpsend@localhost";
  std::string to = "smtpsink@localhost";
  std::string subject = "smtpsend";
  std::string helo_name = "localhost";  // also the Message-ID domain
  int recipients = 1;  // >1: to's local part gets "+1", "+2", ...
  // Body bytes on the wire (CRLF lines, before dot-stuffing); each message
  // picks uniformly in [size_min, size_max]. Ignored with a body file.
  int64_t size_min = 1024;
  int64_t size_max = 1024;
  // When non-empty, the body is this text (line ends normalised to CRLF).
  std::string body_text;
};

class MessageGenerator {
 public:
  // Fails on bad shapes (recipients < 1, sizes out of order or huge).
  static base::Result<MessageGenerator> Create(MessageShape shape,
                                               const base::Clock* clock,
                                               uint64_t id_seed);

  // "MAIL FROM:<from>[ SMTPUTF8]\r\n".
  std::string_view MailLine(bool smtputf8) const {
    return smtputf8 && needs_utf8_ ? mail_utf8_ : mail_;
  }
  int recipients() const { return int(rcpt_.size()); }
  std::string_view RcptLine(int i) const { return rcpt_[i]; }
  // MAIL + every RCPT (+ "DATA\r\n" when with_data): one pipelined group.
  std::string_view Envelope(bool smtputf8, bool with_data) const;
  // True when an address is not ASCII (needs the SMTPUTF8 parameter).
  bool needs_utf8() const { return needs_utf8_; }

  int64_t PickBodySize(Rng& rng) const;
  // Appends this message's header block (ending in the blank line) to out.
  // Does not allocate when out has ~512 bytes of spare capacity.
  void AppendHeaders(std::string* out);
  // The body of `size` bytes as up to two static pieces. For DATA (stuffed)
  // lines starting with '.' are doubled; the generated body has none.
  struct Body {
    std::string_view a, b;
    size_t size() const { return a.size() + b.size(); }
  };
  Body GetBody(int64_t size, bool stuffed) const;

 private:
  MessageGenerator() = default;

  const base::Clock* clock_ = nullptr;
  MessageShape shape_;
  std::string mail_, mail_utf8_;
  std::vector<std::string> rcpt_;
  std::string env_[2][2];  // [utf8][with_data]
  bool needs_utf8_ = false;
  std::string lines_;      // generated: full 38-byte lines
  std::string tails_[40];  // generated: last line of r bytes
  std::string file_raw_, file_stuffed_;
  bool from_file_ = false;
  uint64_t id_seed_ = 0;
  uint64_t sequence_ = 0;
  int64_t date_second_ = -1;
  char date_[40] = {};
  size_t date_len_ = 0;
};

// Dot-stuffs and CRLF-normalises text so it can follow DATA; ensures it ends
// in CRLF (empty stays empty).
std::string StuffForData(std::string_view text, bool stuff);

}  // namespace sender
