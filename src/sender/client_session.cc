#include "sender/client_session.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>

namespace sender {

namespace {

Outcome ClassOf(int code) {
  switch (code / 100) {
    case 4:
      return Outcome::kRejectedTemporary;
    case 5:
      return Outcome::kRejectedPermanent;
    default:
      return Outcome::kFailedProtocol;
  }
}

bool KeywordIs(std::string_view line, std::string_view kw) {
  // line is the text after "250-"/"250 ": the keyword ends at a space.
  if (line.size() < kw.size()) return false;
  if (line.size() > kw.size() && line[kw.size()] != ' ') return false;
  for (size_t i = 0; i < kw.size(); ++i) {
    char c = line[i];
    if (c >= 'a' && c <= 'z') c = char(c - 32);
    if (c != kw[i]) return false;
  }
  return true;
}

}  // namespace

ClientSession::ClientSession(const SessionSetup* setup, MessageGenerator* gen,
                             Stats* stats, Progress* progress,
                             MessageSource* source, Tracer* tracer)
    : setup_(setup),
      gen_(gen),
      stats_(stats),
      progress_(progress),
      source_(source),
      tracer_(tracer) {
  ehlo_line_ = "EHLO " + setup->helo_name + "\r\n";
  helo_line_ = "HELO " + setup->helo_name + "\r\n";
  queue_.reserve(size_t(2 * gen->recipients() + 16));
  // Small reserves: 10,000 idle sessions must stay cheap. A longer reply
  // line grows line_ once and the capacity is kept across connections.
  line_.reserve(256);
  cmd_.reserve(512);
  hdr_.reserve(1024);
}

void ClientSession::Begin(uint64_t session_id, uint64_t seed,
                          base::SteadyTime start) {
  id_ = session_id;
  rng_ = Rng(seed);
  connected_ = closed_ = close_after_write_ = false;
  pending_claim_ = true;
  want_tls_ = rng_.Chance(setup_->starttls_share);
  tls_pending_ = tls_done_ = hold_pending_ = held_ = false;
  helo_tried_ = start_after_rset_ = false;
  ext_pipelining_ = ext_chunking_ = ext_starttls_ = ext_smtputf8_ = false;
  pipelining_ = bdat_ = utf8_ = false;
  bulk_ = quit_sent_ = false;
  sent_on_conn_ = 0;
  slot_ = 1;
  next_rcpt_ = 0;
  msgs_[0] = msgs_[1] = Msg();
  queue_.clear();
  head_ = 0;
  outcome_ = Outcome::kAccepted;
  start_ = connected_at_ = read_since_ = start;
  deadline_ = start + setup_->phase_timeout;
  held_ns_ = 0;
  line_.clear();
  cmd_.clear();
  hdr_.clear();
  npieces_ = 0;
  pending_bytes_ = 0;
}

ClientSession::Want ClientSession::want() const {
  if (npieces_ > 0) return Want::kWrite;
  if (closed_) return Want::kClose;
  if (tls_pending_) return Want::kTls;
  if (hold_pending_) return Want::kHold;
  if (head_ < queue_.size()) return Want::kRead;
  return Want::kClose;
}

int ClientSession::Output(std::string_view* out) const {
  for (int i = 0; i < npieces_; ++i) {
    const Piece& p = pieces_[i];
    const char* base =
        p.data ? p.data : (p.scratch == 0 ? cmd_.data() : hdr_.data());
    out[i] = std::string_view(base + p.offset, p.size);
  }
  return npieces_;
}

void ClientSession::Emit(std::string_view s, bool content) {
  if (s.empty()) return;
  if (npieces_ == kMaxPieces) std::abort();  // a bug: pieces are bounded
  pieces_[npieces_++] = Piece{s.data(), 0, 0, s.size()};
  pending_bytes_ += s.size();
  if (content) stats_->content_bytes += s.size();
  if (tracer_ && (!content || setup_->verbose >= 2)) {
    size_t pos = 0;
    while (pos < s.size()) {
      size_t e = s.find("\r\n", pos);
      if (e == std::string_view::npos) e = s.size();
      tracer_->Line(id_, true, s.substr(pos, e - pos));
      pos = e + 2;
    }
  }
}

void ClientSession::EmitCmd(std::string_view s) {
  size_t off = cmd_.size();
  cmd_.append(s);
  if (tracer_) tracer_->Line(id_, true, s.substr(0, s.size() - 2));
  pending_bytes_ += s.size();
  if (npieces_ > 0 && pieces_[npieces_ - 1].data == nullptr &&
      pieces_[npieces_ - 1].scratch == 0 &&
      pieces_[npieces_ - 1].offset + pieces_[npieces_ - 1].size == off) {
    pieces_[npieces_ - 1].size += s.size();
    return;
  }
  if (npieces_ == kMaxPieces) std::abort();
  pieces_[npieces_++] = Piece{nullptr, 0, off, s.size()};
}

void ClientSession::Push(Kind k, int slot, bool chained) {
  queue_.push_back(Expect{k, uint8_t(slot), chained, base::SteadyTime{}});
}

void ClientSession::Record(Phase p, base::SteadyTime from,
                           base::SteadyTime to) {
  stats_->phase[int(p)].Record(
      std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}

void ClientSession::RecordReply(Phase p, const Expect& e,
                                base::SteadyTime now) {
  // A reply to a command not yet written (the server answered early or
  // repeated itself) has no latency to measure.
  if (e.sent != base::SteadyTime{}) Record(p, e.sent, now);
}

void ClientSession::OnConnected(base::SteadyTime now,
                                std::string_view preface) {
  connected_ = true;
  connected_at_ = read_since_ = now;
  deadline_ = now + setup_->phase_timeout;
  Record(Phase::kConnect, start_, now);
  if (progress_) progress_->Add(progress_->sessions_open, 1);
  if (!preface.empty()) {
    size_t off = cmd_.size();
    cmd_.append(preface);
    pieces_[npieces_++] = Piece{nullptr, 0, off, preface.size()};
    pending_bytes_ += preface.size();
    if (tracer_) tracer_->Line(id_, true, "[PROXY header]");
  }
  queue_.push_back(Expect{Kind::kBanner, 0, false, now});
  if (rng_.Chance(setup_->early_talk_share)) {
    stats_->early_talkers++;
    EmitEhlo();
  }
}

void ClientSession::OnConnectFailed(base::SteadyTime now) {
  FailSession(Outcome::kFailedConnect, now, false);
}

void ClientSession::OnWritten(base::SteadyTime now) {
  stats_->bytes_written += pending_bytes_;
  pending_bytes_ = 0;
  npieces_ = 0;
  cmd_.clear();
  hdr_.clear();
  for (size_t i = head_; i < queue_.size(); ++i)
    if (queue_[i].sent == base::SteadyTime{}) queue_[i].sent = now;
  read_since_ = now;
  deadline_ = now + setup_->phase_timeout;
  if (close_after_write_) Close();
}

void ClientSession::OnBytes(std::string_view data, base::SteadyTime now) {
  stats_->bytes_read += data.size();
  held_ns_ +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - read_since_)
          .count();
  read_since_ = now;
  deadline_ = now + setup_->phase_timeout;
  // After a failure that says QUIT, the rest of the input is moot.
  while (!data.empty() && !closed_ && !close_after_write_) {
    size_t nl = data.find('\n');
    std::string_view part = data.substr(0, nl);
    if (line_.size() + part.size() > kMaxReplyLine) {
      FailSession(Outcome::kFailedProtocol, now, false);
      return;
    }
    if (nl == std::string_view::npos) {
      line_.append(part);
      return;
    }
    data.remove_prefix(nl + 1);
    std::string_view line = part;
    if (!line_.empty()) {
      line_.append(part);
      line = line_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    HandleLine(line, now);
    line_.clear();
  }
}

void ClientSession::HandleLine(std::string_view line, base::SteadyTime now) {
  if (tracer_) tracer_->Line(id_, false, line);
  int code = 0;
  if (line.size() < 3 ||
      std::from_chars(line.data(), line.data() + 3, code).ptr !=
          line.data() + 3 ||
      code < 200 || code > 599 ||
      (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
    FailSession(Outcome::kFailedProtocol, now, false);
    return;
  }
  bool more = line.size() > 3 && line[3] == '-';
  if (head_ < queue_.size() && queue_[head_].kind == Kind::kEhlo &&
      code / 100 == 2 && line.size() > 4) {
    std::string_view kw = line.substr(4);
    if (KeywordIs(kw, "PIPELINING")) ext_pipelining_ = true;
    if (KeywordIs(kw, "CHUNKING")) ext_chunking_ = true;
    if (KeywordIs(kw, "STARTTLS")) ext_starttls_ = true;
    if (KeywordIs(kw, "SMTPUTF8")) ext_smtputf8_ = true;
  }
  if (!more) HandleReply(code, now);
}

void ClientSession::EmitEhlo() {
  ext_pipelining_ = ext_chunking_ = ext_starttls_ = ext_smtputf8_ = false;
  Emit(ehlo_line_, false);
  Push(Kind::kEhlo, 0);
}

void ClientSession::HandleReply(int code, base::SteadyTime now) {
  if (head_ >= queue_.size()) {  // a reply nobody asked for
    FailSession(
        code == 421 ? Outcome::kRejectedTemporary : Outcome::kFailedProtocol,
        now, false);
    return;
  }
  Expect e = queue_[head_++];
  if (head_ == queue_.size()) queue_.clear(), head_ = 0;
  if (code == 421 && e.kind != Kind::kQuit) {
    FailSession(Outcome::kRejectedTemporary, now, false);
    return;
  }
  bool ok = code / 100 == 2;
  Msg& m = msgs_[e.slot];
  switch (e.kind) {
    case Kind::kBanner:
      RecordReply(Phase::kBanner, e, now);
      if (!ok) return FailSession(ClassOf(code), now, true);
      // An early talker already sent EHLO; its reply comes next.
      if (head_ >= queue_.size()) EmitEhlo();
      return;
    case Kind::kEhlo:
      RecordReply(Phase::kEhlo, e, now);
      if (ok) return AfterGreeting(now);
      if (code / 100 == 5 && !helo_tried_) {
        helo_tried_ = true;
        stats_->helo_fallbacks++;
        Emit(helo_line_, false);
        Push(Kind::kHelo, 0);
        return;
      }
      return FailSession(ClassOf(code), now, true);
    case Kind::kHelo:
      RecordReply(Phase::kEhlo, e, now);
      if (ok) return AfterGreeting(now);
      return FailSession(ClassOf(code), now, true);
    case Kind::kStartTls:
      if (code == 220) {
        tls_pending_ = true;
        tls_sent_ = e.sent;
        return;
      }
      stats_->tls_unavailable++;
      tls_done_ = true;
      return AfterGreeting(now);
    case Kind::kMail:
      RecordReply(Phase::kMail, e, now);
      if (!ok && !m.decided) Decide(m, ClassOf(code));
      if (!pipelining_) {
        if (!ok) return FailedTransaction(now);
        next_rcpt_ = 0;
        Emit(gen_->RcptLine(next_rcpt_++), false);
        Push(Kind::kRcpt, e.slot);
      }
      return;
    case Kind::kRcpt:
      RecordReply(Phase::kRcpt, e, now);
      m.rcpt_replies++;
      if (ok) {
        m.rcpt_ok++;
        stats_->recipients_accepted++;
      } else {
        stats_->recipients_rejected++;
        if (!m.first_reject) m.first_reject = code;
      }
      if (m.rcpt_replies == gen_->recipients()) OnEnvelopeDone(m, e.slot, now);
      return;
    case Kind::kData:
      RecordReply(Phase::kData, e, now);
      if (e.chained) {  // bulk: the content is on its way already
        if (code == 354) return;
        if (!m.decided) Decide(m, ClassOf(code));
        m.live = false;
        return FailSession(ClassOf(code), now, false);
      }
      if (code == 354) {
        if (m.decided) {  // a lenient server: end the empty message
          Emit(".\r\n", false);
          Push(Kind::kEod, e.slot);
          return;
        }
        return SendContent(e.slot, now);
      }
      if (!m.decided) Decide(m, ClassOf(code));
      m.live = false;
      return FailedTransaction(now);
    case Kind::kEod:
    case Kind::kBdat:
      RecordReply(Phase::kEndOfData, e, now);
      if (!m.decided) Decide(m, ok ? Outcome::kAccepted : ClassOf(code));
      m.live = false;
      if (bulk_) return StartNext(now);  // a slot is free: the next one
      if (e.chained) return;
      if (e.kind == Kind::kBdat && !ok) return FailedTransaction(now);
      return StartNext(now);
    case Kind::kRset:
      if (start_after_rset_) {
        start_after_rset_ = false;
        StartNext(now);
      }
      return;
    case Kind::kQuit:
      Close();
      return;
  }
}

// All RCPT replies are in: decide whether the message goes on.
void ClientSession::OnEnvelopeDone(Msg& m, int slot, base::SteadyTime now) {
  if (m.rcpt_ok == 0 && !m.decided) Decide(m, ClassOf(m.first_reject));
  if (pipelining_) return;  // DATA or BDAT is already on its way
  if (next_rcpt_ < gen_->recipients()) {
    Emit(gen_->RcptLine(next_rcpt_++), false);
    Push(Kind::kRcpt, slot);
    return;
  }
  if (m.decided) return FailedTransaction(now);
  if (bdat_) return EmitBdat(slot);
  Emit("DATA\r\n", false);
  Push(Kind::kData, slot);
}

void ClientSession::AfterGreeting(base::SteadyTime now) {
  if (want_tls_ && !tls_done_) {
    if (ext_starttls_) {
      Emit("STARTTLS\r\n", false);
      Push(Kind::kStartTls, 0);
      return;
    }
    stats_->tls_unavailable++;
    tls_done_ = true;
  }
  pipelining_ = setup_->pipelining && ext_pipelining_;
  bdat_ = setup_->bdat && ext_chunking_;
  bulk_ = pipelining_ && !bdat_ && setup_->bulk;
  utf8_ = ext_smtputf8_;
  if (setup_->hold.count() > 0 && !held_) {
    hold_pending_ = true;
    if (progress_) progress_->Add(progress_->sessions_holding, 1);
    deadline_ = now + setup_->hold + setup_->phase_timeout;
    return;
  }
  StartNext(now);
}

void ClientSession::OnHoldDone(base::SteadyTime now) {
  if (hold_pending_ && progress_)
    progress_->Add(progress_->sessions_holding, -1);
  hold_pending_ = false;
  held_ = true;
  stats_->held_sessions++;
  read_since_ = now;
  deadline_ = now + setup_->phase_timeout;
  StartNext(now);
}

void ClientSession::OnTlsDone(bool ok, base::SteadyTime now) {
  tls_pending_ = false;
  tls_done_ = true;
  if (!ok) return FailSession(Outcome::kFailedProtocol, now, false);
  Record(Phase::kStartTls, tls_sent_, now);
  stats_->tls_sessions++;
  read_since_ = now;
  deadline_ = now + setup_->phase_timeout;
  EmitEhlo();
}

// --abort-in-data: half the body, then hang up without ending the message.
void ClientSession::Abort(Msg& m, std::string_view body) {
  Emit(body.substr(0, body.size() / 2), true);
  Decide(m, Outcome::kAborted);
  m.live = false;
  if (outcome_ == Outcome::kAccepted) outcome_ = Outcome::kAborted;
  close_after_write_ = true;
}

// The transaction failed before its content: reset, then go on.
void ClientSession::FailedTransaction(base::SteadyTime now) {
  Emit("RSET\r\n", false);
  Push(Kind::kRset, 0);
  if (pipelining_) return StartNext(now);
  start_after_rset_ = true;
}

void ClientSession::Decide(Msg& m, Outcome o) {
  m.decided = true;
  if (IsFailure(o)) source_->Unclaim();
  stats_->messages[int(o)]++;
  if (progress_) {
    progress_->Add(progress_->messages_done, 1);
    if (IsFailure(o)) progress_->Add(progress_->messages_bad, 1);
  }
}

void ClientSession::FailSession(Outcome o, base::SteadyTime now,
                                bool polite_quit) {
  if (closed_) return;
  if (outcome_ == Outcome::kAccepted) outcome_ = o;
  for (Msg& m : msgs_) {
    if (m.live && !m.decided) Decide(m, o);
    m.live = false;
  }
  if (pending_claim_) {
    pending_claim_ = false;
    Msg dummy;
    Decide(dummy, o);
  }
  npieces_ = 0;
  pending_bytes_ = 0;
  cmd_.clear();
  hdr_.clear();
  queue_.clear();
  head_ = 0;
  if (hold_pending_ && progress_)
    progress_->Add(progress_->sessions_holding, -1);
  hold_pending_ = tls_pending_ = false;
  if (polite_quit && connected_) {
    Emit("QUIT\r\n", false);
    close_after_write_ = true;
    return;
  }
  Close();
}

void ClientSession::Close() {
  if (hold_pending_ && progress_)
    progress_->Add(progress_->sessions_holding, -1);
  closed_ = true;
  hold_pending_ = tls_pending_ = false;
}

void ClientSession::OnPeerClosed(base::SteadyTime now) {
  if (closed_) return;
  bool only_quit =
      head_ + 1 == queue_.size() && queue_[head_].kind == Kind::kQuit;
  if (only_quit) return Close();
  FailSession(Outcome::kFailedProtocol, now, false);
}

void ClientSession::OnTimeout(base::SteadyTime now) {
  FailSession(Outcome::kFailedTimeout, now, false);
}

void ClientSession::Finish(base::SteadyTime now, uint32_t retransmissions) {
  if (!closed_) FailSession(Outcome::kFailedProtocol, now, false);
  for (Msg& m : msgs_)
    if (m.live && !m.decided) Decide(m, Outcome::kFailedProtocol);
  if (connected_) {
    Record(Phase::kSession, start_, now);
    stats_->held.Record(held_ns_);
    stats_->held_ns_total += held_ns_;
    stats_->retrans.Record(retransmissions);
    stats_->retrans_total += retransmissions;
    if (progress_) progress_->Add(progress_->sessions_open, -1);
  }
  stats_->sessions[int(outcome_)]++;
}

}  // namespace sender
