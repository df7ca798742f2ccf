// libFuzzer target: the PROXY v1/v2 header parser (conn/proxy.h), fed as a
// trusted peer's first bytes. It must never read past its input, never
// claim more bytes than it was given, and agree with itself when the same
// bytes arrive in two pieces.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "conn/proxy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  conn::ProxyHeader h;
  size_t used = 0;
  auto r = conn::ParseProxyHeader(in, &h, &used);
  if (r == conn::ProxyParse::kDone && (used == 0 || used > size)) std::abort();
  if (r == conn::ProxyParse::kDone && size > 0) {
    // The header alone parses the same way.
    conn::ProxyHeader again;
    size_t used2 = 0;
    if (conn::ParseProxyHeader(in.substr(0, used), &again, &used2) !=
            conn::ProxyParse::kDone ||
        used2 != used || !(again.source == h.source) ||
        again.source_port != h.source_port || again.local != h.local) {
      std::abort();
    }
  }
  // A strict prefix of a complete header is never an error.
  if (r == conn::ProxyParse::kDone && used > 1) {
    conn::ProxyHeader part;
    size_t n = 0;
    if (conn::ParseProxyHeader(in.substr(0, used - 1), &part, &n) ==
        conn::ProxyParse::kDone) {
      std::abort();
    }
  }
  return 0;
}
