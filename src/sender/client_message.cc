// Sending a message: the next transaction, BDAT chunks, the content and
// its headers (split from client_session.cc to keep files small).
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "sender/client_session.h"

namespace sender {

// Claims and starts the next message on this connection, or says QUIT.
void ClientSession::StartNext(base::SteadyTime now) {
  if (quit_sent_) return;  // bulk: the other transaction's reply came last
  bool go = sent_on_conn_ < setup_->messages_per_connection &&
            (pending_claim_ || source_->Claim());
  if (!go) {
    Emit("QUIT\r\n", false);
    Push(Kind::kQuit, 0);
    quit_sent_ = true;
    return;
  }
  BeginMessage(now);
}

void ClientSession::BeginMessage(base::SteadyTime now) {
  pending_claim_ = false;
  sent_on_conn_++;
  slot_ ^= 1;
  Msg& m = msgs_[slot_];
  m = Msg();
  m.live = true;
  m.body_size = gen_->PickBodySize(rng_);
  m.abort = rng_.Chance(setup_->abort_share);
  if (pipelining_) {
    Emit(gen_->Envelope(utf8_, !bdat_), false);
    Push(Kind::kMail, slot_);
    for (int i = 0; i < gen_->recipients(); ++i) Push(Kind::kRcpt, slot_);
    if (bdat_) {
      EmitBdat(slot_);
    } else if (bulk_) {
      Push(Kind::kData, slot_, /*chained=*/true);
      SendContent(slot_, now);
    } else {
      Push(Kind::kData, slot_);
    }
    return;
  }
  Emit(gen_->MailLine(utf8_), false);
  Push(Kind::kMail, slot_);
}

void ClientSession::EmitBdat(int slot) {
  Msg& m = msgs_[slot];
  size_t hdr_start = hdr_.size();
  gen_->AppendHeaders(&hdr_);
  auto body = gen_->GetBody(m.body_size, false);
  size_t total = hdr_.size() - hdr_start + body.size();
  char line[48] = "BDAT ";
  auto r = std::to_chars(line + 5, line + 30, total);
  std::memcpy(r.ptr, " LAST\r\n", 7);
  EmitCmd(std::string_view(line, size_t(r.ptr + 7 - line)));
  EmitHeaders(hdr_start);
  if (m.abort) return Abort(m, body.a);
  Emit(body.a, true);
  Emit(body.b, true);
  Push(Kind::kBdat, slot);
}

void ClientSession::SendContent(int slot, base::SteadyTime now) {
  Msg& m = msgs_[slot];
  size_t hdr_start = hdr_.size();
  gen_->AppendHeaders(&hdr_);
  EmitHeaders(hdr_start);
  auto body = gen_->GetBody(m.body_size, true);
  if (m.abort) return Abort(m, body.a);
  Emit(body.a, true);
  Emit(body.b, true);
  Emit(".\r\n", false);
  // RFC 2920: the content may open a new command group, so the next
  // envelope (or QUIT) rides in the same write.
  Push(Kind::kEod, slot, pipelining_);
  // Bulk: a second transaction follows at once; a third waits for the
  // first one's reply (two slots).
  if (pipelining_ && !(bulk_ && msgs_[slot ^ 1].live)) StartNext(now);
}

void ClientSession::EmitHeaders(size_t start) {
  if (npieces_ == kMaxPieces) std::abort();
  size_t n = hdr_.size() - start;
  pieces_[npieces_++] = Piece{nullptr, 1, start, n};
  pending_bytes_ += n;
  stats_->content_bytes += n;
  if (tracer_ && setup_->verbose >= 2) {
    std::string_view h(hdr_.data() + start, n >= 2 ? n - 2 : n);
    size_t pos = 0;
    while (pos < h.size()) {
      size_t e = std::min(h.find("\r\n", pos), h.size());
      tracer_->Line(id_, true, h.substr(pos, e - pos));
      pos = e + 2;
    }
  }
}

}  // namespace sender
