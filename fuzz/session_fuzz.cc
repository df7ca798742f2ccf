// libFuzzer target: arbitrary bytes, cut into arbitrary reads, into the SMTP
// engine. The engine must never crash, never produce a reply without CR LF,
// and always consume its input unless it asks to close or start TLS.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "smtp/server_session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const smtp::SessionOptions* opts = [] {
    config::SmtpConfig cfg;
    cfg.max_line_length = 128;
    cfg.max_message_size = 4096;
    cfg.max_recipients = 5;
    cfg.auth = true;
    auto o = smtp::MakeSessionOptions(cfg, "fuzz.example", true);
    return new smtp::SessionOptions(std::move(o).value());
  }();
  smtp::SessionRecord rec;
  smtp::ServerSession s(opts, &rec, "192.0.2.1", 1);
  std::string out;
  s.Greet(0, &out);
  size_t pos = 0;
  while (pos < size) {
    // The first byte of each piece says how long the piece is.
    size_t len = 1 + data[pos] % 64;
    ++pos;
    std::string_view piece(reinterpret_cast<const char*>(data) + pos,
                           std::min(len, size - pos));
    pos += piece.size();
    out.clear();
    auto step = s.Feed(piece, 0, &out);
    if (!out.empty() && out.substr(out.size() - 2) != "\r\n") std::abort();
    if (step.action == smtp::ServerSession::Action::kClose) break;
    if (step.action == smtp::ServerSession::Action::kStartTls) {
      s.TlsStarted();
    } else if (step.consumed != piece.size()) {
      std::abort();
    }
  }
  return 0;
}
