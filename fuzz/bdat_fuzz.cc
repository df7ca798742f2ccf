// libFuzzer target: BDAT chunking in the SMTP engine. A transaction is
// opened, then the input is cut into BDAT commands whose declared sizes and
// chunk bytes come from the fuzzer, including sizes that lie. The engine
// must answer every chunk exactly once, never consume past its input, and
// keep going or close cleanly.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "smtp/server_session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const smtp::SessionOptions* opts = [] {
    smtp::Options cfg;
    cfg.max_message_size = 2048;
    cfg.max_errors = 1000;
    return new smtp::SessionOptions(
        smtp::MakeSessionOptions(cfg, "fuzz.example", false).value());
  }();
  static smtp::Output buf;
  smtp::ServerSession s(opts, &buf, "192.0.2.1", 1);
  s.Greet(0);
  std::string in = "EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n";
  size_t pos = 0;
  while (pos + 2 <= size && in.size() < 1 << 16) {
    uint8_t declared = data[pos], actual = data[pos + 1];
    pos += 2;
    bool last = declared & 1;
    in += "BDAT " + std::to_string(declared) + (last ? " LAST" : "") + "\r\n";
    size_t take = std::min<size_t>(actual, size - pos);
    in.append(reinterpret_cast<const char*>(data) + pos, take);
    pos += take;
    if (last && (declared & 2)) {
      in += "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n";
    }
  }
  std::string_view rest = in;
  for (int guard = 0; !rest.empty(); ++guard) {
    auto step = s.Feed(rest, 0);
    if (step.consumed > rest.size()) std::abort();
    if (!step.bytes.empty() && !step.bytes.ends_with("\r\n")) std::abort();
    if (step.action != smtp::Action::kContinue) break;
    if (step.consumed == 0 || guard > 100000) std::abort();
    rest.remove_prefix(step.consumed);
  }
  return 0;
}
