#include "capture/maildir.h"

#include <cinttypes>
#include <cstdio>
#include <ctime>

namespace capture {

std::string Unstuff(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  size_t i = 0;
  while (i < raw.size()) {
    size_t eol = raw.find("\r\n", i);
    size_t end = eol == std::string_view::npos ? raw.size() : eol + 2;
    std::string_view line = raw.substr(i, end - i);
    if (line == ".\r\n") break;  // the terminator
    if (!line.empty() && line[0] == '.') line.remove_prefix(1);
    out.append(line);
    i = end;
  }
  return out;
}

namespace {

void AppendClean(std::string* out, std::string_view v) {
  for (char c : v) {
    unsigned char u = static_cast<unsigned char>(c);
    out->push_back(u < 0x20 || u >= 0x7f ? '?' : c);
  }
}

void Header(std::string* out, std::string_view name, std::string_view value) {
  out->append(name);
  out->append(": ");
  AppendClean(out, value);
  out->append("\r\n");
}

std::string Rfc5322Date(double wall) {
  time_t t = time_t(wall);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

}  // namespace

std::string FormatMessage(const smtp::CapturedMessage& m,
                          std::string_view sink_id) {
  std::string out;
  std::string body = m.dot_stuffed ? Unstuff(m.raw) : m.raw;
  out.reserve(body.size() + 512);
  Header(&out, "Return-Path", "<" + m.mail_from + ">");
  Header(&out, "X-Spamsink-Source", m.client_ip);
  Header(&out, "X-Spamsink-Helo", m.helo);
  Header(&out, "X-Spamsink-Mail-From", "<" + m.mail_from + ">");
  for (const auto& r : m.rcpts)
    Header(&out, "X-Spamsink-Rcpt-To", "<" + r + ">");
  Header(&out, "X-Spamsink-Tls", m.tls ? "yes" : "no");
  Header(&out, "X-Spamsink-Evidence",
         "bare_lf=" + std::to_string(m.bare_lf) +
             " bare_cr=" + std::to_string(m.bare_cr) +
             (m.dot_stuffed ? " transfer=data" : " transfer=bdat"));
  Header(&out, "X-Spamsink-Sink", sink_id);
  Header(&out, "X-Spamsink-Received", Rfc5322Date(m.wall));
  out.append(body);
  return out;
}

std::string MakeName(double wall, int pid, uint64_t seq,
                     std::string_view host) {
  int64_t sec = int64_t(wall);
  int usec = int((wall - double(sec)) * 1e6);
  if (usec < 0 || usec > 999999) usec = 0;
  char head[96];
  std::snprintf(head, sizeof head, "%010" PRId64 ".M%06dP%dQ%" PRIu64 ".", sec,
                usec, pid, seq);
  std::string name = head;
  for (char c : host.substr(0, 64)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '.';
    name.push_back(ok ? c : '_');
  }
  if (host.empty()) name += "localhost";
  return name;
}

int64_t NameSeconds(std::string_view name) {
  if (name.size() < 11 || name[10] != '.') return -1;
  int64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > 200 || id[0] == '.') return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string MboxEntry(std::string_view file, double wall) {
  time_t t = time_t(wall);
  struct tm tm;
  gmtime_r(&t, &tm);
  char date[64];
  strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
  std::string out = "From MAILER-DAEMON ";
  out += date;
  out += "\n";
  size_t i = 0;
  while (i < file.size()) {
    size_t nl = file.find('\n', i);
    size_t end = nl == std::string_view::npos ? file.size() : nl;
    std::string_view line = file.substr(i, end - i);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t q = line.find_first_not_of('>');
    if (q != std::string_view::npos && line.substr(q, 5) == "From ") {
      out.push_back('>');
    }
    out.append(line);
    out.push_back('\n');
    i = end + 1;
  }
  out.push_back('\n');
  return out;
}

std::string HeaderValue(std::string_view file, std::string_view name) {
  size_t i = 0;
  while (i < file.size()) {
    size_t eol = file.find("\r\n", i);
    if (eol == std::string_view::npos || eol == i) break;  // end of headers
    std::string_view line = file.substr(i, eol - i);
    if (line.size() > name.size() + 1 && line.substr(0, name.size()) == name &&
        line[name.size()] == ':') {
      std::string_view v = line.substr(name.size() + 1);
      while (!v.empty() && v[0] == ' ') v.remove_prefix(1);
      return std::string(v);
    }
    i = eol + 2;
  }
  return "";
}

}  // namespace capture
