// libFuzzer target: arbitrary bytes, cut into arbitrary reads, into the SMTP
// engine. The engine must never crash, never produce a reply without CR LF,
// and always make progress through its input unless it asks to close or
// start TLS.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "smtp/server_session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const smtp::SessionOptions* opts = [] {
    smtp::Options cfg;
    cfg.max_line_length = 128;
    cfg.max_message_size = 4096;
    cfg.max_recipients = 5;
    cfg.auth = true;
    auto o = smtp::MakeSessionOptions(cfg, "fuzz.example", true);
    return new smtp::SessionOptions(std::move(o).value());
  }();
  static smtp::Output buf;
  smtp::ServerSession s(opts, &buf, "192.0.2.1", 1);
  s.Greet(0);
  size_t pos = 0;
  while (pos < size) {
    // The first byte of each piece says how long the piece is.
    size_t len = 1 + data[pos] % 64;
    ++pos;
    std::string_view piece(reinterpret_cast<const char*>(data) + pos,
                           std::min(len, size - pos));
    pos += piece.size();
    // Feed until the piece is consumed (a step may stop early for flow
    // control, but must always make progress).
    for (int guard = 0; !piece.empty(); ++guard) {
      auto step = s.Feed(piece, 0);
      const auto& out = step.bytes;
      if (!out.empty() && out.substr(out.size() - 2) != "\r\n") std::abort();
      if (!step.replies.empty() && step.replies.back().end != out.size()) {
        std::abort();
      }
      if (step.action == smtp::Action::kClose) return 0;
      if (step.action == smtp::Action::kStartTls) {
        s.TlsStarted();
        break;
      }
      if (step.consumed == 0 || guard > 4096) std::abort();
      piece.remove_prefix(step.consumed);
    }
  }
  return 0;
}
