// Replies waiting to be sent, and the tarpit's pacing of them: each reply
// waits the delay its stage is given, then goes out whole or a few bytes
// at a time (stutter). Exists only while there is something to send, and
// owns its copy of the bytes (the thread's reply buffer serves other
// connections meanwhile). Pure: the plan, the time and the random source
// are passed in.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "smtp/server_session.h"
#include "tarpit/policy.h"
#include "tarpit/stutter.h"

namespace conn {

tarpit::Stage TarpitStage(smtp::Stage s);

class Outbox {
 public:
  // The unsent rest of an unpaced write: one chunk, no waits.
  explicit Outbox(std::string_view rest);
  // Replies to pace one by one. skip_first_delay: the first reply's delay
  // has been waited already (the greeting). error_sleep: the wait for each
  // of a reply's ReplyMark::sleeps (the persona's error sleep).
  Outbox(std::string_view bytes, std::span<const smtp::ReplyMark> marks,
         bool skip_first_delay, base::Duration error_sleep = {});

  struct Next {
    bool done = false;       // nothing left
    bool stuttered = false;  // a new reply starts, sent in pieces
    base::Duration wait{};   // wait this long, then send Pending()
  };
  // Moves to the next chunk, once Pending() is empty. Error sleeps: held by
  // the tarpit, a reply waits its sleeps on top of its delay; otherwise
  // each line of a reply with sleeps goes out one sleep after the previous
  // one, together with the replies without sleeps before it (Postfix
  // buffers replies, sleeps before each line once past its soft error
  // limit, and flushes after every sleep). Stutter keeps time:
  // a reply's first chunk is due its delay after now, each later chunk one
  // interval after the previous one was due (not after it was written), so
  // a slow write or a late timer does not stretch the reply. A chunk found
  // already late goes at once and the schedule restarts from now: lateness
  // is never made up in a burst.
  Next Advance(const tarpit::Plan& plan, base::SteadyTime now,
               tarpit::Random& random);
  // The unsent bytes of the current chunk.
  std::string_view Pending() const { return chunk_.substr(sent_); }
  void Sent(size_t n) { sent_ = std::min(chunk_.size(), sent_ + n); }
  size_t footprint() const {
    return bytes_.capacity() + marks_.capacity() * sizeof(smtp::ReplyMark);
  }

 private:
  std::string bytes_;
  std::vector<smtp::ReplyMark> marks_;
  size_t mark_ = 0;   // next mark
  size_t begin_ = 0;  // start of the next reply in bytes_
  std::optional<tarpit::StutterCursor> cursor_;
  std::string_view chunk_;
  size_t sent_ = 0;
  base::Duration error_sleep_{};
  bool skip_first_delay_ = false;
  bool paced_ = false;
  bool fresh_ = false;      // the cursor's next chunk is its first
  base::SteadyTime due_{};  // when the current chunk was due
};

}  // namespace conn
