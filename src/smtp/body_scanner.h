// Scans a DATA body as it streams in: undoes dot-stuffing, finds the end
// (only CR LF . CR LF; RFC 5321 2.3.8 and 4.5.2), counts bare LF and bare CR
// as evidence without ever treating them as line ends (SMTP smuggling), and
// measures the message size and its longest text line. Keeps no body bytes:
// state is a few integers, so a boundary may fall anywhere, even inside the
// terminating sequence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace smtp {

class BodyScanner {
 public:
  // Starts a body whose first byte begins a line (just after "DATA" CRLF).
  void Reset();

  // Consumes bytes of input up to and including the end-of-data sequence.
  // Returns the number of bytes consumed; done() tells whether the end was
  // found (then the bytes after it are commands, not body).
  size_t Feed(std::string_view input);

  bool done() const { return state_ == State::kDone; }
  // Message octets after unstuffing, line ends included, terminator not.
  uint64_t size() const { return size_; }
  // Longest line in octets, CRLF included.
  uint64_t longest_line() const { return longest_line_; }
  uint32_t bare_lf() const { return bare_lf_; }
  uint32_t bare_cr() const { return bare_cr_; }

 private:
  enum class State : uint8_t {
    kLineStart,  // after CRLF (or at the start)
    kDot,        // a line that began with '.'
    kDotCr,      // ".\r" at a line start
    kInLine,
    kCr,  // a CR inside a line, not yet known to end it
    kDone,
  };
  void EndLine();

  State state_ = State::kLineStart;
  uint64_t size_ = 0;
  uint64_t line_length_ = 0;
  uint64_t longest_line_ = 0;
  uint32_t bare_lf_ = 0;
  uint32_t bare_cr_ = 0;
};

}  // namespace smtp
