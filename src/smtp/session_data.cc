// Message transfer (DATA, BDAT), the final reply, and AUTH (always
// refused, after the whole exchange a password guesser expects).
#include "smtp/command.h"
#include "smtp/server_session.h"

namespace smtp {

Action ServerSession::Data(std::string_view, double) {
  // Sendmail 8.17.1.9 (Debian's smuggling fix): the message sent before the
  // 354 is a protocol error, and the connection is closed.
  if (input_pending_ && opts_->persona.rules.sendmail_sequence) {
    return Close(Reply::kSyncError, CloseReason::kTooManyErrors);
  }
  scanner_.Reset();
  if (capture_) {
    capture_->raw.clear();
    capture_overflow_ = false;
  }
  EnterState(State::kData);
  Append(Reply::kDataGo);
  return Action::kContinue;
}

Action ServerSession::FinishMessage(double wall) {
  facts_.bare_lf += scanner_.bare_lf();
  facts_.bare_cr += scanner_.bare_cr();
  events_->bare_lf += scanner_.bare_lf();
  events_->bare_cr += scanner_.bare_cr();
  events_->bytes += scanner_.size();
  facts_.bytes += scanner_.size();
  EnterState(State::kGreeted);
  ResetTransaction();
  if (scanner_.size() > uint64_t(opts_->max_message_size)) {
    ++events_->too_big;
    ++events_->rejected;
    ++events_->limits_hit;
    ++facts_.limits_hit;
    return Error(Reply::kTooBig);
  }
  if (opts_->max_text_line_length > 0 &&
      scanner_.longest_line() > uint64_t(opts_->max_text_line_length)) {
    ++events_->long_lines;
    ++events_->rejected;
    ++events_->limits_hit;
    ++facts_.limits_hit;
    return Error(Reply::kTextLineTooLong);
  }
  DeliverCapture(wall, true);
  return AnswerMessage(wall);
}

void ServerSession::CaptureBody(std::string_view bytes) {
  // Stuffing at most doubles a line of dots; beyond that the message is
  // over max_message_size and refused anyway.
  uint64_t bound = 2 * uint64_t(opts_->max_message_size) + 8;
  if (capture_overflow_ || capture_->raw.size() + bytes.size() > bound) {
    capture_overflow_ = true;
    capture_->raw.clear();
    return;
  }
  capture_->raw.append(bytes);
}

void ServerSession::DeliverCapture(double wall, bool dot_stuffed) {
  if (!capture_ || capture_overflow_) return;
  std::unique_ptr<CapturedMessage> m = std::move(capture_);
  m->client_ip = client_ip_;
  // The last HELO name kept in the session's facts (cleaned and bounded).
  m->helo = facts_.helo_names.empty() ? "" : facts_.helo_names.back().name;
  m->tls = tls_active_;
  m->dot_stuffed = dot_stuffed;
  m->bare_lf = dot_stuffed ? scanner_.bare_lf() : uint32_t(txn_.bdat_bare_lf);
  m->bare_cr = dot_stuffed ? scanner_.bare_cr() : 0;
  m->wall = wall;
  opts_->tap->Deliver(std::move(*m));
}

Action ServerSession::Bdat(std::string_view arg, double wall) {
  const Rules& rules = opts_->persona.rules;
  if (rules.bdat_needs_ehlo && !ehlo_) {
    // CHUNKING was not offered: no chunk follows as far as the server
    // knows, so its bytes are read as commands (Exim).
    return Error(Reply::kBdatNotAdvertised);
  }
  std::string_view size_text, last;
  SplitCommand(arg, &size_text, &last);
  uint64_t size;
  if (!ParseCount(size_text, &size)) return Error(Reply::kSyntaxBdat);
  if (!last.empty() && !EqualsIgnoreCase(last, "LAST")) {
    // Exim takes any other word for "not LAST": the chunk's end is still
    // the size given, so reading it cannot be smuggled around.
    if (!rules.exim_sequence) return Error(Reply::kSyntaxBdat);
    last = {};
  }
  // The chunk is read whatever the verdict (RFC 3030 4.2): decide the reply
  // now, send it after the bytes.
  chunk_ = Chunk{size, size, !last.empty(), Reply::kCount, state_};
  const bool bdat_need_rcpt =
      !opts_->persona.replies[int(Reply::kBdatNeedRcpt)].empty();
  if (!rules.helo_required && state_ != State::kMail) {
    chunk_.error = Reply::kNeedRcpt;  // Postfix: whatever is missing
  } else if (!rules.helo_required && txn_.rcpts == 0) {
    chunk_.error = Reply::kNoValidRcpts;
  } else if (state_ == State::kFresh) {
    chunk_.error = Reply::kNeedHelo;
  } else if (bdat_need_rcpt && (state_ != State::kMail || txn_.rcpts == 0)) {
    chunk_.error = Reply::kBdatNeedRcpt;
  } else if (state_ != State::kMail) {
    chunk_.error = Reply::kNeedMail;
  } else if (txn_.rcpts == 0) {
    chunk_.error = Reply::kNeedRcpt;
  } else if (txn_.bdat_error != Reply::kCount) {
    chunk_.error = txn_.bdat_error;
  } else if (txn_.bdat_total + size > uint64_t(opts_->max_message_size)) {
    chunk_.error = txn_.bdat_error = Reply::kTooBig;
  }
  // Until LAST, MAIL and DATA are refused even after a refused chunk
  // (Exim: unless refused for want of a recipient).
  bool keep_txn = chunk_.error == Reply::kBdatNeedRcpt && rules.exim_sequence;
  bdat_open_ = !chunk_.last && !keep_txn;
  if (keep_txn) chunk_.last = false;  // the transaction stays open
  EnterState(State::kBdatChunk);
  if (txn_.bdat_total == 0) {
    if (capture_) {
      capture_->raw.clear();
      capture_overflow_ = false;
    }
    exim_size_.Reset();
  }
  txn_.bdat_total += size;
  if (size == 0) return FinishChunk(wall);
  return Action::kContinue;
}

Action ServerSession::FinishChunk(double wall) {
  EnterState(chunk_.resume);
  Reply error = chunk_.error;
  if (error != Reply::kCount) {
    if (error == Reply::kTooBig) {
      ++events_->too_big;
      ++events_->rejected;
      ++events_->limits_hit;
      ++facts_.limits_hit;
      ResetTransaction();
    }
    // The last chunk ends the transaction, refused or not.
    if (chunk_.last) ResetTransaction();
    return Error(error);
  }
  if (!chunk_.last) {
    Append(Reply::kBdatChunk, {}, chunk_.size);
    return Action::kContinue;
  }
  DeliverCapture(wall, false);
  facts_.bytes += txn_.bdat_total;
  events_->bytes += txn_.bdat_total;
  uint64_t size = txn_.bdat_total;
  if (opts_->persona.rules.bdat_size_crlf) {
    // What Postfix stores: bare LF made CR LF, a missing final CR LF added.
    size += txn_.bdat_bare_lf + (txn_.bdat_last_byte == '\n' ? 0 : 2);
  } else if (opts_->persona.rules.exim_bdat_total) {
    size = exim_size_.Finish();
  }
  ResetTransaction();
  return AnswerMessage(wall, size);
}

// A whole message arrived within the limits: count it, answer per policy.
Action ServerSession::AnswerMessage(double wall, uint64_t bdat_size) {
  declared_size_ = 0;
  ++facts_.messages;
  ++events_->messages;
  switch (final_reply_) {
    case FinalReply::kAccept: {
      ++events_->accepted;
      if (opts_->persona.rules.forgive_errors) errors_ = junk_ = 0;
      std::string id;
      ids_.Append(opts_->persona.queue_id, wall, &id);
      if (bdat_size != kNotBdat) {
        Append(Reply::kQueuedBdat, id, bdat_size);
      } else {
        Append(Reply::kQueued, id, uint64_t(wall * 1000) % 100000000000ull);
      }
      break;
    }
    case FinalReply::kTempfail:
      ++events_->tempfailed;
      Append(Reply::kTempfail);
      break;
    case FinalReply::kReject:
      ++events_->rejected;
      Append(Reply::kRejected);
      break;
  }
  return Action::kContinue;
}

Reply ServerSession::CheckAuth(std::string_view arg) const {
  if (opts_->persona.rules.sendmail_sequence) return SendmailCheckAuth(arg);
  if (!opts_->auth) return Reply::kAuthNotEnabled;
  if (state_ == State::kFresh) return Reply::kNeedHelo;
  if (state_ == State::kMail) return Reply::kNestedMail;
  return Reply::kCount;
}

Action ServerSession::Auth(std::string_view arg, double) {
  if (opts_->persona.rules.sendmail_sequence) return SendmailAuth(arg);
  std::string_view mech, initial;
  SplitCommand(arg, &mech, &initial);
  if (EqualsIgnoreCase(mech, "LOGIN")) {
    // Username (unless given), then password, then failure: the whole
    // exchange a password guesser expects, so it spends its round trips.
    auth_steps_ = initial.empty() ? 2 : 1;
    Append(initial.empty() ? Reply::kAuthChallengeUser
                           : Reply::kAuthChallengePass);
    EnterState(State::kAuth);
    return Action::kContinue;
  }
  if (EqualsIgnoreCase(mech, "PLAIN") && initial.empty()) {
    auth_steps_ = 1;
    Append(Reply::kAuthChallengePlain);
    EnterState(State::kAuth);
    return Action::kContinue;
  }
  return Error(Reply::kAuthFailed);
}

Action ServerSession::AuthResponse(std::string_view line) {
  if (opts_->persona.rules.sendmail_sequence) {
    return SendmailAuthResponse(line);
  }
  // Any response, even "*" (cancel), ends in failure eventually.
  if (--auth_steps_ > 0 && line != "*") {
    Append(Reply::kAuthChallengePass);
    return Action::kContinue;
  }
  auth_steps_ = 0;
  EnterState(State::kGreeted);
  return Error(Reply::kAuthFailed);
}

}  // namespace smtp
