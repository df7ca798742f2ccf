// Golden transcripts: testdata/*.txt hold C: (client) and S: (server) lines.
// Each transcript is played three ways: one client line per read, all client
// bytes in one read (pipelining), and one byte per read. All three must
// produce exactly the expected server lines.
//
// Format: "! key value" sets an option (persona, max_recipients, auth,
// final_reply, max_errors, max_line_length, max_message_size, starttls);
// "C: text" is a client line (CR LF appended); "R: text" is raw client bytes
// (no CR LF); escapes \r \n \t \\ \xHH; "S: text" is an expected server line
// where '*' matches any run of characters; "#" starts a comment.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "smtp/server_session.h"

namespace smtp {
namespace {

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out.push_back(s[i]);
      continue;
    }
    char c = s[++i];
    if (c == 'r')
      out.push_back('\r');
    else if (c == 'n')
      out.push_back('\n');
    else if (c == 't')
      out.push_back('\t');
    else if (c == 'x' && i + 2 < s.size() + 1) {
      out.push_back(
          char(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else
      out.push_back(c);
  }
  return out;
}

bool GlobMatch(std::string_view pat, std::string_view s) {
  if (pat.empty()) return s.empty();
  if (pat[0] == '*') {
    for (size_t i = 0; i <= s.size(); ++i) {
      if (GlobMatch(pat.substr(1), s.substr(i))) return true;
    }
    return false;
  }
  return !s.empty() && pat[0] == s[0] && GlobMatch(pat.substr(1), s.substr(1));
}

struct Transcript {
  Options cfg;
  std::vector<std::string> client;  // one entry per C:/R: line
  std::vector<std::string> server;  // expected lines
};

Transcript Load(const std::filesystem::path& path) {
  Transcript t;
  t.cfg.starttls = false;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::string_view v =
        line.size() > 3 ? std::string_view(line).substr(3) : "";
    if (line.starts_with("! ")) {
      std::istringstream kv(line.substr(2));
      std::string k, val;
      kv >> k >> val;
      if (k == "persona")
        t.cfg.persona = val;
      else if (k == "max_recipients")
        t.cfg.max_recipients = std::stoi(val);
      else if (k == "max_errors")
        t.cfg.max_errors = std::stoi(val);
      else if (k == "max_line_length")
        t.cfg.max_line_length = std::stoi(val);
      else if (k == "max_text_line_length")
        t.cfg.max_text_line_length = std::stoi(val);
      else if (k == "max_message_size")
        t.cfg.max_message_size = std::stoll(val);
      else if (k == "max_commands")
        t.cfg.max_commands = std::stoi(val);
      else if (k == "max_junk_commands")
        t.cfg.max_junk_commands = std::stoi(val);
      else if (k == "auth")
        t.cfg.auth = val == "true";
      else if (k == "starttls")
        t.cfg.starttls = val == "true";
      else if (k == "final_reply")
        t.cfg.final_reply = val;
      else
        ADD_FAILURE() << path << ": unknown option " << k;
    } else if (line.starts_with("C: ") || line == "C:") {
      t.client.push_back(Unescape(v) + "\r\n");
    } else if (line.starts_with("R: ")) {
      t.client.push_back(Unescape(v));
    } else if (line.starts_with("S: ") || line == "S:") {
      t.server.push_back(std::string(v));
    } else {
      ADD_FAILURE() << path << ": bad line: " << line;
    }
  }
  return t;
}

// Plays the client bytes cut into pieces; returns the server's lines.
std::vector<std::string> Play(const Transcript& t,
                              const std::vector<std::string>& pieces) {
  auto opts = MakeSessionOptions(t.cfg, "mail.example.com", t.cfg.starttls);
  EXPECT_TRUE(opts.ok()) << opts.error();
  Output buf;
  ServerSession s(&opts.value(), &buf, "192.0.2.1", 42);
  const double wall = 1764111000;
  std::string out(s.Greet(wall).bytes);
  bool closed = false;
  for (size_t i = 0; i < pieces.size() && !closed; ++i) {
    // A step may stop early (flow control): feed the rest of the piece.
    std::string_view rest = pieces[i];
    while (!rest.empty()) {
      auto step = s.Feed(rest, wall);
      out += step.bytes;
      rest.remove_prefix(step.consumed);
      if (step.action == Action::kClose) {
        closed = true;
        break;
      }
      if (step.action == Action::kStartTls) {
        s.TlsStarted();
        break;  // the rest of the read is discarded (RFC 3207)
      }
    }
  }
  std::vector<std::string> lines;
  size_t pos = 0;
  for (size_t e; (e = out.find("\r\n", pos)) != std::string::npos;
       pos = e + 2) {
    lines.push_back(out.substr(pos, e - pos));
  }
  EXPECT_EQ(pos, out.size()) << "reply without CR LF";
  return lines;
}

void Expect(const std::string& name, const char* mode,
            const std::vector<std::string>& want,
            const std::vector<std::string>& got) {
  for (size_t i = 0; i < std::max(want.size(), got.size()); ++i) {
    std::string w = i < want.size() ? want[i] : "<nothing>";
    std::string g = i < got.size() ? got[i] : "<nothing>";
    if (!GlobMatch(w, g)) {
      ADD_FAILURE() << name << " (" << mode << ") line " << i + 1
                    << "\n  want: " << w << "\n  got:  " << g;
      return;
    }
  }
}

// SPAMSINK_UPDATE_TRANSCRIPTS=1 rewrites each file's S: lines with what
// the engine sends now (line by line), keeping the patterns that still
// match; review the diff before committing it.
void Update(const std::filesystem::path& path, const Transcript& t) {
  // The replies to each client line: play every prefix, take the new lines.
  std::vector<std::vector<std::string>> after(t.client.size() + 1);
  size_t seen = 0;
  for (size_t i = 0; i <= t.client.size(); ++i) {
    std::vector<std::string> prefix(t.client.begin(), t.client.begin() + i);
    std::vector<std::string> got = Play(t, prefix);
    for (size_t j = seen; j < got.size(); ++j) after[i].push_back(got[j]);
    seen = std::max(seen, got.size());
  }
  std::ifstream in(path);
  std::vector<std::string> want;  // old S: lines, to keep patterns
  std::string line, text;
  size_t piece = 0, w = 0;
  auto emit = [&](size_t i) {
    for (const auto& g : after[i]) {
      std::string old = w < want.size() ? want[w] : "";
      ++w;
      text += "S: " + (GlobMatch(old, g) ? old : g) + "\n";
    }
  };
  {
    std::ifstream scan(path);
    while (std::getline(scan, line)) {
      if (line.starts_with("S:"))
        want.push_back(line.size() > 3 ? line.substr(3) : "");
    }
  }
  bool greeted = false;
  while (std::getline(in, line)) {
    if (line.starts_with("S:")) continue;
    bool client = line.starts_with("C:") || line.starts_with("R:");
    if (client && !greeted) {
      emit(0);
      greeted = true;
    }
    text += line + "\n";
    if (client) emit(++piece);
  }
  if (!greeted) emit(0);
  std::ofstream(path) << text;
}

TEST(Transcripts, AllModes) {
  int played = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(SPAMSINK_TRANSCRIPTS)) {
    if (entry.path().extension() != ".txt") continue;
    Transcript t = Load(entry.path());
    std::string name = entry.path().filename();
    if (std::getenv("SPAMSINK_UPDATE_TRANSCRIPTS")) {
      Update(entry.path(), t);
      continue;
    }
    Expect(name, "line by line", t.server, Play(t, t.client));
    // STARTTLS must not see what was pipelined after it (it is discarded),
    // so the all-at-once and byte modes apply only without STARTTLS.
    // Sendmail refuses HELO/EHLO with input behind it (improper pipelining,
    // session_sendmail.cc), so its transcripts skip the all-at-once mode.
    if (!t.cfg.starttls) {
      std::string all;
      for (const auto& c : t.client) all += c;
      if (t.cfg.persona != "sendmail") {
        Expect(name, "one read", t.server, Play(t, {all}));
      }
      std::vector<std::string> bytes;
      for (char c : all) bytes.emplace_back(1, c);
      Expect(name, "byte by byte", t.server, Play(t, bytes));
    }
    ++played;
  }
  EXPECT_GE(played, 5);
}

}  // namespace
}  // namespace smtp
