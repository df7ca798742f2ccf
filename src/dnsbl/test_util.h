// Builds query packets and reads responses for the DNSBL tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "dnsbl/wire.h"

namespace dnsbl::testing {

inline std::string MakeQuery(const std::string& name, uint16_t qtype,
                             bool edns = false, uint16_t udp_size = 1232,
                             uint8_t version = 0, uint16_t id = 0x1234) {
  std::string p;
  auto put16 = [&](uint16_t v) {
    p.push_back(char(v >> 8));
    p.push_back(char(v & 0xff));
  };
  put16(id);
  put16(0x0100);  // RD
  put16(1);
  put16(0);
  put16(0);
  put16(edns ? 1 : 0);
  // Labels as given (case kept: the 0x20 bits a resolver may set).
  std::vector<std::string> labels;
  for (size_t start = 0; start < name.size();) {
    size_t dot = std::min(name.find('.', start), name.size());
    labels.push_back(name.substr(start, dot - start));
    start = dot + 1;
  }
  EncodeName(labels, &p);
  put16(qtype);
  put16(kClassIn);
  if (edns) {
    p.push_back('\0');
    put16(kTypeOpt);
    put16(udp_size);
    p.push_back('\0');
    p.push_back(char(version));
    put16(0);
    put16(0);
  }
  return p;
}

struct Parsed {
  uint16_t id = 0, flags = 0, qd = 0, an = 0, ns = 0, ar = 0;
  int rcode() const { return flags & 0xf; }
  bool tc() const { return flags & 0x0200; }
  bool aa() const { return flags & 0x0400; }
  struct Rr {
    uint16_t type = 0;
    uint32_t ttl = 0;
    std::string rdata;
  };
  std::vector<Rr> records;  // all sections, in order
};

inline uint16_t Get16(const std::string& s, size_t at) {
  return uint16_t(uint8_t(s[at]) << 8 | uint8_t(s[at + 1]));
}

// Skips a name (uncompressed labels ending in 0, or a pointer).
inline size_t SkipName(const std::string& s, size_t p) {
  while (p < s.size()) {
    uint8_t l = uint8_t(s[p]);
    if ((l & 0xc0) == 0xc0) return p + 2;
    if (l == 0) return p + 1;
    p += 1 + l;
  }
  return p;
}

inline Parsed Parse(const std::string& s) {
  Parsed r;
  if (s.size() < 12) return r;
  r.id = Get16(s, 0);
  r.flags = Get16(s, 2);
  r.qd = Get16(s, 4);
  r.an = Get16(s, 6);
  r.ns = Get16(s, 8);
  r.ar = Get16(s, 10);
  size_t p = 12;
  for (int i = 0; i < r.qd; ++i) p = SkipName(s, p) + 4;
  for (int i = 0; i < r.an + r.ns + r.ar && p + 10 <= s.size(); ++i) {
    p = SkipName(s, p);
    Parsed::Rr rr;
    rr.type = Get16(s, p);
    rr.ttl = uint32_t(Get16(s, p + 4)) << 16 | Get16(s, p + 6);
    uint16_t len = Get16(s, p + 8);
    rr.rdata = s.substr(p + 10, len);
    p += 10 + len;
    r.records.push_back(rr);
  }
  return r;
}

}  // namespace dnsbl::testing
