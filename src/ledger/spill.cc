#include "ledger/spill.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "ledger/json_fields.h"

namespace ledger {
namespace {

// Visits r's fields in the line's order; V has u(uint64_t&), d(double&),
// ip(base::IpAddress&), names(vector<NameCount>&), reasons(SourceRecord&).
template <typename R, typename V>
void Fields(R& r, V& v) {
  v.ip(r.ip);
  v.d(r.first_seen);
  v.d(r.last_seen);
  v.u(r.connections);
  v.u(r.messages);
  v.u(r.early_talker);
  v.u(r.bare_lf);
  v.u(r.protocol_errors);
  v.d(r.seconds_held);
  v.u(r.sessions_with_mail);
  v.u(r.transactions);
  v.u(r.recipients);
  v.u(r.bytes);
  v.u(r.commands);
  v.u(r.tls_sessions);
  v.u(r.proxied_sessions);
  v.u(r.auth_attempts);
  v.u(r.pipelining);
  v.u(r.bare_cr);
  v.u(r.unknown_commands);
  v.u(r.limits_hit);
  v.u(r.tarpitted_sessions);
  v.d(r.delay_seconds);
  v.u(r.replies_stuttered);
  v.u(r.slow_reads);
  v.reasons(r);
  v.names(r.helo_names);
  v.names(r.mail_from_domains);
  v.names(r.rcpt_domains);
  v.addresses(r);  // optional last field: absent in older spill files
}

struct Encoder {
  std::string out;
  void Sep() {
    if (!out.empty()) out += '\t';
  }
  void ip(const base::IpAddress& a) {
    Sep();
    out += a.ToString();
  }
  void u(uint64_t v) {
    Sep();
    out += std::to_string(v);
  }
  void d(double v) {
    Sep();
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest exact
    out.append(buf, r.ptr);
  }
  // JSON escapes tabs and newlines, so a field never holds either.
  void names(const std::vector<peer::NameCount>& n) {
    Sep();
    out += NamesJson(n);
  }
  void reasons(const SourceRecord& r) {
    Sep();
    out += ReasonsJson(r);
  }
  void addresses(const SourceRecord& r) {
    std::string j = AddressesJson(r);
    if (j.empty()) return;
    Sep();
    out += j;
  }
};

struct Decoder {
  std::string_view rest;
  bool ok = true;
  std::string_view Next() {
    size_t tab = rest.find('\t');
    std::string_view f = rest.substr(0, tab);
    rest = tab == std::string_view::npos ? std::string_view()
                                         : rest.substr(tab + 1);
    if (f.empty()) ok = false;
    return f;
  }
  void ip(base::IpAddress& a) {
    auto p = base::IpAddress::Parse(std::string(Next()));
    if (p.ok()) {
      a = *p;
    } else {
      ok = false;
    }
  }
  void u(uint64_t& v) {
    auto f = Next();
    if (std::from_chars(f.data(), f.data() + f.size(), v).ec != std::errc())
      ok = false;
  }
  void d(double& v) {
    auto f = Next();
    if (std::from_chars(f.data(), f.data() + f.size(), v).ec != std::errc())
      ok = false;
  }
  void names(std::vector<peer::NameCount>& n) {
    std::string f(Next());
    n = ParseNames(reinterpret_cast<const unsigned char*>(f.c_str()));
  }
  void reasons(SourceRecord& r) {
    std::string f(Next());
    ParseReasons(reinterpret_cast<const unsigned char*>(f.c_str()), &r);
  }
  void addresses(SourceRecord& r) {
    if (rest.empty()) return;
    std::string f(Next());
    ParseAddresses(reinterpret_cast<const unsigned char*>(f.c_str()), &r);
  }
};

base::Status Errno(const std::string& what, const std::string& path) {
  return base::Status::Error("ledger.spill_path: " + what + " " + path + ": " +
                             std::strerror(errno));
}

// Writes text to path through a temporary file, fsync and rename.
base::Status WriteAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return Errno("cannot create", tmp);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto s = Errno("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0) {
    auto s = Errno("cannot sync", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Errno("cannot rename to", path);
  }
  return {};
}

base::Result<std::string> ReadAll(const std::string& path, bool* exists) {
  std::ifstream in(path, std::ios::binary);
  *exists = bool(in);
  if (!in) return std::string();
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  if (in.bad()) return Errno("cannot read", path);
  return text;
}

}  // namespace

std::string EncodeRecord(const SourceRecord& r) {
  Encoder e;
  Fields(r, e);
  return std::move(e.out);
}

base::Result<SourceRecord> DecodeRecord(std::string_view line) {
  SourceRecord r;
  Decoder d{line};
  Fields(r, d);
  if (!d.ok || !d.rest.empty()) {
    return base::Status::Error("damaged spill record");
  }
  return r;
}

Spill::Spill(std::string path, uint64_t max_bytes)
    : path_(std::move(path)), max_bytes_(max_bytes) {}

uint64_t Spill::Size() const {
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) return 0;
  return uint64_t(st.st_size);
}

base::Result<uint64_t> Spill::Pos() const {
  bool exists = false;
  auto text = ReadAll(path_ + ".pos", &exists);
  if (!text.ok()) return text.status();
  if (!exists) return uint64_t(0);
  return uint64_t(std::strtoull(text->c_str(), nullptr, 10));
}

base::Result<uint64_t> Spill::Unsent() const {
  auto pos = Pos();
  if (!pos.ok()) return pos.status();
  uint64_t size = Size();
  return size > *pos ? size - *pos : 0;
}

base::Status Spill::Append(const std::vector<const SourceRecord*>& records) {
  std::string text;
  for (const auto* r : records) text += EncodeRecord(*r) + '\n';
  if (max_bytes_ != 0 && Size() + text.size() > max_bytes_) {
    return base::Status::Error("ledger.max_spill_bytes: the spill file " +
                               path_ + " is full");
  }
  int fd =
      ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return Errno("cannot open", path_);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto s = Errno("cannot write", path_);
      ::close(fd);
      return s;
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0) {
    auto s = Errno("cannot sync", path_);
    ::close(fd);
    return s;
  }
  ::close(fd);
  return {};
}

base::Result<SpilledBatch> Spill::Read(uint64_t max_bytes) const {
  auto pos = Pos();
  if (!pos.ok()) return pos.status();
  SpilledBatch b;
  b.end = *pos;
  std::ifstream in(path_, std::ios::binary);
  if (!in) return b;
  in.seekg(std::streamoff(*pos));
  std::string line;
  uint64_t read = 0;
  // Bounded by max_bytes (and by the file's end).
  while ((b.records.empty() || read < max_bytes) && std::getline(in, line)) {
    if (in.eof()) break;  // a partial last line (a failed append): skipped
    read += line.size() + 1;
    auto r = DecodeRecord(line);
    if (r.ok()) b.records.push_back(std::move(r).value());
  }
  b.end = *pos + read;
  return b;
}

base::Status Spill::Consume(uint64_t end) {
  if (end >= Size()) {
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
      return Errno("cannot remove", path_);
    }
    if (::unlink((path_ + ".pos").c_str()) != 0 && errno != ENOENT) {
      return Errno("cannot remove", path_ + ".pos");
    }
    return {};
  }
  return WriteAtomically(path_ + ".pos", std::to_string(end) + "\n");
}

base::Status Spill::SaveBatch(const SpilledBatch& batch) {
  std::string text = "spamsink-batch " + std::to_string(batch.seq) + " " +
                     std::to_string(batch.end) + "\n";
  for (const auto& r : batch.records) text += EncodeRecord(r) + '\n';
  return WriteAtomically(path_ + ".batch", text);
}

base::Result<std::optional<SpilledBatch>> Spill::LoadBatch() const {
  bool exists = false;
  auto text = ReadAll(path_ + ".batch", &exists);
  if (!text.ok()) return text.status();
  if (!exists) return std::optional<SpilledBatch>();
  SpilledBatch b;
  std::string_view rest = *text;
  size_t nl = rest.find('\n');
  std::string head(rest.substr(0, nl));
  unsigned long long seq = 0, end = 0;
  if (nl == std::string_view::npos ||
      std::sscanf(head.c_str(), "spamsink-batch %llu %llu", &seq, &end) != 2) {
    return base::Status::Error("ledger.spill_path: damaged " + path_ +
                               ".batch");
  }
  b.seq = seq;
  b.end = end;
  rest.remove_prefix(nl + 1);
  while (!rest.empty()) {
    nl = rest.find('\n');
    if (nl == std::string_view::npos) break;
    auto r = DecodeRecord(rest.substr(0, nl));
    if (!r.ok()) {
      return base::Status::Error("ledger.spill_path: damaged " + path_ +
                                 ".batch");
    }
    b.records.push_back(std::move(r).value());
    rest.remove_prefix(nl + 1);
  }
  return std::optional<SpilledBatch>(std::move(b));
}

base::Status Spill::RemoveBatch() {
  if (::unlink((path_ + ".batch").c_str()) != 0 && errno != ENOENT) {
    return Errno("cannot remove", path_ + ".batch");
  }
  return {};
}

}  // namespace ledger
