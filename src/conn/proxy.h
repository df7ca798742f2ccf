// PROXY protocol v1 (text) and v2 (binary) header parsing, as sent by HAProxy
// and cloud load balancers (haproxy.org/download/2.9/doc/proxy-protocol.txt).
// Pure code: bytes in, verdict out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/ip.h"

namespace conn {

struct ProxyHeader {
  bool local = false;  // v2 LOCAL or v1 UNKNOWN: keep the socket's address
  base::IpAddress source;
  uint16_t source_port = 0;
};

enum class ProxyParse { kNeedMore, kDone, kError };

// Parses a header at the start of data. On kDone, *consumed is the header's
// length and *out the client it names. A v1 header is at most 107 bytes, a
// v2 header 16 + length bytes; anything else is kError.
ProxyParse ParseProxyHeader(std::string_view data, ProxyHeader* out,
                            size_t* consumed);

}  // namespace conn
