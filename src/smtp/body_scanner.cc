#include "smtp/body_scanner.h"

#include <algorithm>
#include <cstring>

namespace smtp {

void BodyScanner::Reset() { *this = BodyScanner(); }

void BodyScanner::EndLine() {
  line_length_ += 2;  // CR LF
  size_ += 2;
  longest_line_ = std::max(longest_line_, line_length_);
  line_length_ = 0;
  state_ = State::kLineStart;
}

size_t BodyScanner::Feed(std::string_view input) {
  const char* p = input.data();
  const char* const end = p + input.size();
  while (p < end && state_ != State::kDone) {
    switch (state_) {
      case State::kInLine: {
        // Fast path: skip ordinary bytes up to the next CR, counting any LF
        // on the way as bare.
        const void* cr = std::memchr(p, '\r', end - p);
        const char* stop = cr ? static_cast<const char*>(cr) : end;
        for (const char* lf = p;
             (lf = static_cast<const char*>(std::memchr(lf, '\n', stop - lf)));
             ++lf) {
          ++bare_lf_;
        }
        line_length_ += stop - p;
        size_ += stop - p;
        p = stop;
        if (cr) {
          ++p;
          state_ = State::kCr;
        }
        break;
      }
      case State::kLineStart:
        if (*p == '.') {
          ++p;
          state_ = State::kDot;
          line_length_ = 1;  // the stuffed dot counts toward the line limit
        } else {
          state_ = State::kInLine;
        }
        break;
      case State::kDot:
        if (*p == '\r') {
          ++p;
          state_ = State::kDotCr;
        } else {
          state_ = State::kInLine;  // the leading dot was stuffing: dropped
        }
        break;
      case State::kDotCr:
        if (*p == '\n') {
          ++p;
          state_ = State::kDone;
        } else {
          // ".\r" then something else: the dot was stuffing, the CR is bare.
          ++bare_cr_;
          ++size_;
          ++line_length_;
          state_ = State::kInLine;
          if (*p == '\r') {
            ++p;
            state_ = State::kCr;
          }
        }
        break;
      case State::kCr:
        if (*p == '\n') {
          ++p;
          EndLine();
        } else {
          ++bare_cr_;  // the CR before this byte did not end a line
          ++size_;
          ++line_length_;
          if (*p == '\r') {
            ++p;  // stay in kCr for this new CR
          } else {
            state_ = State::kInLine;
          }
        }
        break;
      case State::kDone:
        break;
    }
  }
  if (state_ != State::kDone) {
    longest_line_ = std::max(longest_line_, line_length_);
  }
  return p - input.data();
}

}  // namespace smtp
