#include "conn/outbox.h"

namespace conn {

static_assert(int(smtp::Stage::kOther) == int(tarpit::Stage::kOther) &&
              int(smtp::Stage::kDataEnd) == int(tarpit::Stage::kDataEnd) &&
              int(smtp::Stage::kGreeting) == int(tarpit::Stage::kGreeting));

tarpit::Stage TarpitStage(smtp::Stage s) { return tarpit::Stage(int(s)); }

Outbox::Outbox(std::string_view rest) : bytes_(rest) {
  chunk_ = bytes_;
  begin_ = bytes_.size();
}

Outbox::Outbox(std::string_view bytes, std::span<const smtp::ReplyMark> marks,
               bool skip_first_delay, base::Duration error_sleep)
    : bytes_(bytes),
      marks_(marks.begin(), marks.end()),
      error_sleep_(error_sleep),
      skip_first_delay_(skip_first_delay),
      paced_(true) {}

Outbox::Next Outbox::Advance(const tarpit::Plan& plan, base::SteadyTime now,
                             tarpit::Random& random) {
  Next next;
  chunk_ = {};
  sent_ = 0;
  for (;;) {
    if (cursor_ && !cursor_->Done()) {
      tarpit::Chunk c = cursor_->Next();
      chunk_ = c.bytes;
      if (fresh_) {
        fresh_ = false;
        due_ = now + c.wait;
        next.wait = c.wait;
        return next;
      }
      due_ += c.wait;
      if (due_ < now) due_ = now;  // late: go now, keep time from here
      next.wait = due_ - now;
      return next;
    }
    if (paced_ && mark_ < marks_.size() && !plan.held) {
      // Not held: only error sleeps. Postfix writes each line of a reply
      // after its sleep and flushes it at once, with the replies before it
      // that had no sleep (buffered until then).
      size_t end = begin_;
      base::Duration wait{};
      while (mark_ < marks_.size()) {
        const smtp::ReplyMark& m = marks_[mark_];
        if (m.sleeps == 0) {
          end = m.end;
          ++mark_;
          continue;
        }
        size_t eol = bytes_.find('\n', end);
        end = eol == std::string::npos || eol + 1 >= m.end ? m.end : eol + 1;
        if (end == m.end) ++mark_;
        wait = error_sleep_;
        break;
      }
      std::string_view chunk(bytes_.data() + begin_, end - begin_);
      begin_ = end;
      tarpit::Pacing pacing;
      pacing.delay = wait;
      cursor_.emplace(chunk, pacing);
      fresh_ = true;
      continue;
    }
    if (paced_ && mark_ < marks_.size()) {
      const auto& m = marks_[mark_++];
      std::string_view reply(bytes_.data() + begin_, m.end - begin_);
      begin_ = m.end;
      auto pacing = plan.Pace(TarpitStage(m.stage), reply.size(), now, random);
      if (skip_first_delay_) {
        pacing.delay = base::Duration::zero();
        skip_first_delay_ = false;
      }
      pacing.delay += error_sleep_ * m.sleeps;
      next.stuttered = next.stuttered || pacing.chunk_bytes > 0;
      cursor_.emplace(reply, pacing);
      fresh_ = true;
      continue;
    }
    if (begin_ < bytes_.size()) {  // bytes without a mark
      chunk_ = std::string_view(bytes_).substr(begin_);
      begin_ = bytes_.size();
      return next;
    }
    next.done = true;
    return next;
  }
}

}  // namespace conn
