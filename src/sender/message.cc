#include "sender/message.h"

#include <charconv>
#include <cstring>
#include <ctime>

namespace sender {

namespace {

constexpr std::string_view kLine = "ABCDEFGHIJKLMNOPQRSTUVWXYZ1234567890\r\n";
constexpr std::string_view kLetters =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ1234567890abcdefgh";
constexpr int64_t kLineLen = kLine.size();  // 38
constexpr int64_t kMaxGenerated = int64_t(1) << 30;

bool NonAscii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return true;
  return false;
}

void Append(std::string* out, std::string_view s) { out->append(s); }

}  // namespace

std::string StuffForData(std::string_view text, bool stuff) {
  std::string out;
  out.reserve(text.size() + text.size() / 64 + 2);
  bool line_start = true;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    if (c == '\n') {
      out += "\r\n";
      line_start = true;
      continue;
    }
    if (line_start && c == '.' && stuff) out += '.';
    out += c;
    line_start = false;
  }
  if (!out.empty() && !line_start) out += "\r\n";
  return out;
}

base::Result<MessageGenerator> MessageGenerator::Create(
    MessageShape shape, const base::Clock* clock, uint64_t id_seed) {
  if (shape.recipients < 1 || shape.recipients > 100000)
    return base::Status::Error("recipients must be between 1 and 100000");
  if (shape.size_min < 0 || shape.size_max < shape.size_min ||
      shape.size_max > kMaxGenerated)
    return base::Status::Error(
        "message size must satisfy 0 <= min <= max <= 1 GiB");
  for (const std::string* s :
       {&shape.from, &shape.to, &shape.subject, &shape.helo_name}) {
    if (s->find_first_of("\r\n") != std::string::npos)
      return base::Status::Error("addresses and subject must be one line");
  }
  MessageGenerator g;
  g.clock_ = clock;
  g.id_seed_ = id_seed;
  g.needs_utf8_ = NonAscii(shape.from) || NonAscii(shape.to);
  g.mail_ = "MAIL FROM:<" + shape.from + ">\r\n";
  g.mail_utf8_ = "MAIL FROM:<" + shape.from + "> SMTPUTF8\r\n";
  for (int i = 1; i <= shape.recipients; ++i) {
    std::string to = shape.to;
    if (shape.recipients > 1) {
      size_t at = to.rfind('@');
      std::string tag = "+" + std::to_string(i);
      if (at == std::string::npos)
        to += tag;
      else
        to.insert(at, tag);
    }
    g.rcpt_.push_back("RCPT TO:<" + to + ">\r\n");
  }
  for (int u = 0; u < 2; ++u) {
    for (int d = 0; d < 2; ++d) {
      std::string& e = g.env_[u][d];
      e = u ? g.mail_utf8_ : g.mail_;
      for (const auto& r : g.rcpt_) e += r;
      if (d) e += "DATA\r\n";
    }
  }
  if (!shape.body_text.empty()) {
    g.from_file_ = true;
    g.file_raw_ = StuffForData(shape.body_text, false);
    g.file_stuffed_ = StuffForData(shape.body_text, true);
  } else {
    int64_t lines = shape.size_max / kLineLen + 1;
    g.lines_.reserve(size_t(lines * kLineLen));
    for (int64_t i = 0; i < lines; ++i) g.lines_ += kLine;
    // tails_[r]: a final line of exactly r bytes ending in CRLF (r >= 2);
    // r == 1 cannot end in CRLF, so GetBody borrows a full line for it.
    for (int r = 2; r < 40; ++r)
      g.tails_[r] = std::string(kLetters.substr(0, r - 2)) + "\r\n";
  }
  g.shape_ = std::move(shape);
  return g;
}

std::string_view MessageGenerator::Envelope(bool smtputf8,
                                            bool with_data) const {
  return env_[smtputf8 && needs_utf8_ ? 1 : 0][with_data ? 1 : 0];
}

int64_t MessageGenerator::PickBodySize(Rng& rng) const {
  if (from_file_) return int64_t(file_raw_.size());
  return rng.Between(shape_.size_min, shape_.size_max);
}

MessageGenerator::Body MessageGenerator::GetBody(int64_t size,
                                                 bool stuffed) const {
  if (from_file_) return {stuffed ? file_stuffed_ : file_raw_, {}};
  if (size <= 0) return {};
  if (size == 1) size = 2;  // the smallest body that ends in CRLF
  int64_t full = size / kLineLen;
  int64_t rest = size % kLineLen;
  if (rest == 1) {  // 37 + 1 + ... : a 39-byte last line instead
    full -= 1;
    rest += kLineLen;
  }
  std::string_view a(lines_.data(), size_t(full * kLineLen));
  std::string_view b;
  if (rest > 0) b = tails_[rest];
  return {a, b};
}

void MessageGenerator::AppendHeaders(std::string* out) {
  double wall = clock_->WallSeconds();
  int64_t sec = int64_t(wall);
  if (sec != date_second_) {
    date_second_ = sec;
    time_t t = time_t(sec);
    struct tm tm;
    gmtime_r(&t, &tm);
    date_len_ =
        strftime(date_, sizeof date_, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  }
  ++sequence_;
  Append(out, "Date: ");
  out->append(date_, date_len_);
  Append(out, "\r\nFrom: <");
  Append(out, shape_.from);
  Append(out, ">\r\nTo: <");
  Append(out, shape_.to);
  Append(out, ">\r\nSubject: ");
  Append(out, shape_.subject);
  Append(out, "\r\nMessage-ID: <");
  char num[24];
  auto r = std::to_chars(num, num + sizeof num, id_seed_, 16);
  out->append(num, r.ptr);
  out->push_back('.');
  r = std::to_chars(num, num + sizeof num, sequence_, 10);
  out->append(num, r.ptr);
  out->push_back('@');
  Append(out, shape_.helo_name);
  Append(out,
         ">\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=us-ascii\r\n"
         "X-Mailer: smtpsend\r\n\r\n");
}

}  // namespace sender
