#include "conn/proxy.h"

#include <array>
#include <cstring>
#include <string>

namespace conn {
namespace {

constexpr char kV2Sig[12] = {'\r', '\n', '\r', '\n', '\0', '\r',
                             '\n', 'Q',  'U',  'I',  'T',  '\n'};

bool ParsePort(std::string_view s, uint16_t* out) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint32_t(c - '0');
  }
  if (v > 65535) return false;
  *out = uint16_t(v);
  return true;
}

ProxyParse ParseV1(std::string_view data, ProxyHeader* out, size_t* consumed) {
  auto end = data.find("\r\n");
  if (end == std::string_view::npos) {
    return data.size() >= 107 ? ProxyParse::kError : ProxyParse::kNeedMore;
  }
  if (end + 2 > 107) return ProxyParse::kError;
  std::string_view line = data.substr(0, end);
  std::string_view parts[6];
  int n = 0;
  while (!line.empty() && n < 6) {
    auto sp = line.find(' ');
    parts[n++] = line.substr(0, sp);
    line = sp == std::string_view::npos ? "" : line.substr(sp + 1);
  }
  if (n < 2 || parts[0] != "PROXY") return ProxyParse::kError;
  *consumed = end + 2;
  if (parts[1] == "UNKNOWN") {
    out->local = true;
    return ProxyParse::kDone;
  }
  if (n != 6 || !line.empty() || (parts[1] != "TCP4" && parts[1] != "TCP6")) {
    return ProxyParse::kError;
  }
  auto ip = base::IpAddress::Parse(parts[2]);
  uint16_t sport, dport;
  if (!ip.ok() || ip->is_v4() != (parts[1] == "TCP4") ||
      !base::IpAddress::Parse(parts[3]).ok() || !ParsePort(parts[4], &sport) ||
      !ParsePort(parts[5], &dport)) {
    return ProxyParse::kError;
  }
  out->local = false;
  out->source = *ip;
  out->source_port = sport;
  return ProxyParse::kDone;
}

ProxyParse ParseV2(std::string_view data, ProxyHeader* out, size_t* consumed) {
  if (data.size() < 16) return ProxyParse::kNeedMore;
  auto b = reinterpret_cast<const uint8_t*>(data.data());
  if ((b[12] >> 4) != 2) return ProxyParse::kError;
  int command = b[12] & 0xf;
  size_t len = size_t(b[14]) << 8 | b[15];
  if (data.size() < 16 + len) return ProxyParse::kNeedMore;
  *consumed = 16 + len;
  if (command == 0) {  // LOCAL: health check from the proxy itself
    out->local = true;
    return ProxyParse::kDone;
  }
  if (command != 1) return ProxyParse::kError;
  int family = b[13] >> 4;
  const uint8_t* a = b + 16;
  if (family == 1 && len >= 12) {  // AF_INET
    uint32_t v4 = uint32_t(a[0]) << 24 | uint32_t(a[1]) << 16 |
                  uint32_t(a[2]) << 8 | a[3];
    out->source = base::IpAddress::FromV4(v4);
    out->source_port = uint16_t(a[8] << 8 | a[9]);
  } else if (family == 2 && len >= 36) {  // AF_INET6
    std::array<uint8_t, 16> v6;
    std::memcpy(v6.data(), a, 16);
    out->source = base::IpAddress::FromV6(v6);
    out->source_port = uint16_t(a[32] << 8 | a[33]);
  } else if (family == 0 || family == 3) {  // UNSPEC or UNIX
    out->local = true;
    return ProxyParse::kDone;
  } else {
    return ProxyParse::kError;
  }
  out->local = false;
  return ProxyParse::kDone;
}

}  // namespace

ProxyParse ParseProxyHeader(std::string_view data, ProxyHeader* out,
                            size_t* consumed) {
  size_t n = std::min(data.size(), sizeof kV2Sig);
  if (std::memcmp(data.data(), kV2Sig, n) == 0) {
    return n < sizeof kV2Sig ? ProxyParse::kNeedMore
                             : ParseV2(data, out, consumed);
  }
  static constexpr std::string_view kV1 = "PROXY ";
  size_t m = std::min(data.size(), kV1.size());
  if (data.substr(0, m) == kV1.substr(0, m)) {
    return m < kV1.size() ? ProxyParse::kNeedMore
                          : ParseV1(data, out, consumed);
  }
  return ProxyParse::kError;
}

}  // namespace conn
