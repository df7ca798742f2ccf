#include "dnsbl/wire.h"

#include <algorithm>

namespace dnsbl {
namespace {

constexpr int kMaxHops = 16;          // compression pointers followed per name
constexpr size_t kMaxName = 255;      // RFC 1035 2.3.4, wire octets
constexpr uint16_t kMaxRecords = 64;  // records skipped looking for OPT

uint16_t Get16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

void Put16(std::string* s, uint16_t v) {
  s->push_back(char(v >> 8));
  s->push_back(char(v & 0xff));
}
void Put32(std::string* s, uint32_t v) {
  Put16(s, uint16_t(v >> 16));
  Put16(s, uint16_t(v & 0xffff));
}

// Reads the name at *pos. On success *pos is past the name's bytes at its
// first location (a pointer counts 2 octets).
bool ReadName(const uint8_t* d, size_t n, size_t* pos,
              std::vector<std::string>* labels, bool* compressed) {
  size_t p = *pos, end = 0, total = 1;
  bool jumped = false;
  for (int hops = 0;;) {
    if (p >= n) return false;
    uint8_t len = d[p];
    if ((len & 0xc0) == 0xc0) {
      if (p + 1 >= n || ++hops > kMaxHops) return false;
      if (!jumped) end = p + 2;
      jumped = true;
      if (compressed) *compressed = true;
      size_t target = size_t(len & 0x3f) << 8 | d[p + 1];
      if (target >= p) return false;  // only backwards: no loops
      p = target;
      continue;
    }
    if (len & 0xc0) return false;  // extended label types
    if (len == 0) {
      *pos = jumped ? end : p + 1;
      return true;
    }
    total += len + 1;
    if (total > kMaxName || p + 1 + len > n) return false;
    if (labels) {
      std::string l(reinterpret_cast<const char*>(d + p + 1), len);
      for (auto& c : l) c = char(std::tolower(static_cast<unsigned char>(c)));
      labels->push_back(std::move(l));
    }
    p += 1 + len;
  }
}

// Skips one resource record; returns its type and sets *opt fields when
// it is an OPT.
bool SkipRecord(const uint8_t* d, size_t n, size_t* pos, Query* q) {
  if (!ReadName(d, n, pos, nullptr, nullptr)) return false;
  if (*pos + 10 > n) return false;
  uint16_t type = Get16(d + *pos);
  uint16_t cls = Get16(d + *pos + 2);
  uint32_t ttl = uint32_t(Get16(d + *pos + 4)) << 16 | Get16(d + *pos + 6);
  uint16_t rdlen = Get16(d + *pos + 8);
  *pos += 10;
  if (*pos + rdlen > n) return false;
  *pos += rdlen;
  if (type == kTypeOpt) {
    if (q->edns) return false;  // RFC 6891 6.1.1: more than one is FORMERR
    q->edns = true;
    q->udp_size = cls;
    q->edns_version = uint8_t(ttl >> 16);
    q->dnssec_ok = (ttl & 0x8000) != 0;
  }
  return true;
}

}  // namespace

Query ParseQuery(const uint8_t* d, size_t n) {
  Query q;
  if (n < 12) return q;  // kDrop
  q.id = Get16(d);
  q.flags = Get16(d + 2);
  if (q.flags & 0x8000) return q;  // a response: never answer it
  q.result = Query::Result::kFormErr;
  int opcode = (q.flags >> 11) & 0xf;
  if (opcode != 0) {
    q.result = Query::Result::kNotImp;
    return q;
  }
  uint16_t qd = Get16(d + 4), an = Get16(d + 6), ns = Get16(d + 8),
           ar = Get16(d + 10);
  if (qd != 1) return q;
  size_t pos = 12;
  if (!ReadName(d, n, &pos, &q.labels, &q.name_compressed)) return q;
  // A pointer in the first name can only point into the header.
  if (q.name_compressed) return q;
  if (pos + 4 > n) return q;
  q.qtype = Get16(d + pos);
  q.qclass = Get16(d + pos + 2);
  pos += 4;
  q.question_wire.assign(reinterpret_cast<const char*>(d + 12), pos - 12);
  if (uint32_t(an) + ns + ar > kMaxRecords) return q;
  for (uint32_t i = 0; i < uint32_t(an) + ns + ar; ++i) {
    if (!SkipRecord(d, n, &pos, &q)) return q;
  }
  q.result = Query::Result::kOk;
  return q;
}

bool EncodeName(const std::vector<std::string>& labels, std::string* out) {
  size_t total = 1;
  for (const auto& l : labels) {
    if (l.empty() || l.size() > 63) return false;
    total += l.size() + 1;
  }
  if (total > kMaxName) return false;
  for (const auto& l : labels) {
    out->push_back(char(l.size()));
    out->append(l);
  }
  out->push_back('\0');
  return true;
}

std::vector<std::string> SplitName(std::string_view name) {
  std::vector<std::string> labels;
  while (!name.empty() && name.back() == '.') name.remove_suffix(1);
  size_t start = 0;
  while (start <= name.size() && !name.empty()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    std::string l(name.substr(start, dot - start));
    for (auto& c : l) c = char(std::tolower(static_cast<unsigned char>(c)));
    labels.push_back(std::move(l));
    start = dot + 1;
    if (dot == name.size()) break;
  }
  return labels;
}

ResponseWriter::ResponseWriter(const Query& q, int rcode, bool authoritative) {
  Put16(&out_, q.id);
  // QR, the opcode as asked, AA, RD echoed; RA never (no recursion).
  uint16_t flags =
      0x8000 | (q.flags & 0x7800) | (q.flags & 0x0100) | uint16_t(rcode & 0xf);
  if (authoritative) flags |= 0x0400;
  Put16(&out_, flags);
  question_ = !q.question_wire.empty() && q.result == Query::Result::kOk;
  Put16(&out_, question_ ? 1 : 0);
  out_.append(6, '\0');
  if (question_) out_ += q.question_wire;
}

void ResponseWriter::Bump(int section) {
  size_t at = 6 + 2 * size_t(section);
  uint16_t v = Get16(reinterpret_cast<const uint8_t*>(out_.data()) + at) + 1;
  out_[at] = char(v >> 8);
  out_[at + 1] = char(v & 0xff);
}

void ResponseWriter::AddAtQuestion(int section, uint16_t type, uint32_t ttl,
                                   const std::string& rdata) {
  Add(section, std::string("\xc0\x0c", 2), type, ttl, rdata);
}

void ResponseWriter::Add(int section, const std::string& owner_wire,
                         uint16_t type, uint32_t ttl,
                         const std::string& rdata) {
  out_ += owner_wire;
  Put16(&out_, type);
  Put16(&out_, kClassIn);
  Put32(&out_, ttl);
  Put16(&out_, uint16_t(rdata.size()));
  out_ += rdata;
  Bump(section);
}

void ResponseWriter::AddOpt(uint16_t udp_size, uint8_t ext_rcode,
                            bool dnssec_ok) {
  out_.push_back('\0');
  Put16(&out_, kTypeOpt);
  Put16(&out_, udp_size);
  Put32(&out_, uint32_t(ext_rcode) << 24 | (dnssec_ok ? 0x8000 : 0));
  Put16(&out_, 0);
  Bump(kAdditional);
}

void ResponseWriter::SetTruncated() { out_[2] = char(out_[2] | 0x02); }

std::string ARdata(uint32_t v) {
  std::string s;
  Put32(&s, v);
  return s;
}

std::string TxtRdata(std::string_view text) {
  std::string s;
  do {
    size_t len = std::min<size_t>(text.size(), 255);
    s.push_back(char(len));
    s.append(text.substr(0, len));
    text.remove_prefix(len);
  } while (!text.empty());
  return s;
}

std::string SoaRdata(const std::string& mname_wire,
                     const std::string& rname_wire, uint32_t serial,
                     uint32_t refresh, uint32_t retry, uint32_t expire,
                     uint32_t minimum) {
  std::string s = mname_wire + rname_wire;
  for (uint32_t v : {serial, refresh, retry, expire, minimum}) Put32(&s, v);
  return s;
}

}  // namespace dnsbl
