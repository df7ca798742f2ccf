#include "api/token.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace api {
namespace {

constexpr size_t kMaxToken = 4096;

bool Blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string Trim(std::string_view s) {
  while (!s.empty() && Blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && Blank(s.back())) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

base::Result<std::string> ReadTokenFile(const std::string& path) {
  auto fail = [&](const std::string& why) {
    return base::Status::Error("api.token_file: \"" + path + "\": " + why);
  };
  // One descriptor for the checks and the read: what is checked is what is
  // read, even if the name is replaced in between.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return fail(std::string("cannot be read (") + strerror(errno) + ")");
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return fail("not a regular file");
  }
  if ((st.st_mode & (S_IRWXO | S_IWGRP)) != 0) {
    close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    return fail(std::string("mode ") + mode +
                " lets other users read or change the token; chmod 0600 "
                "(or 0640 with the server's user in the file's group)");
  }
  std::string text;
  char buf[1024];
  for (;;) {  // bounded: stops past kMaxToken + a line end
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return fail(std::string("cannot be read (") + strerror(e) + ")");
    }
    if (n == 0) break;
    text.append(buf, size_t(n));
    if (text.size() > kMaxToken + 2) break;
  }
  close(fd);
  std::string_view rest = text;
  auto nl = rest.find('\n');
  std::string token = Trim(rest.substr(0, nl));
  if (token.size() > kMaxToken) {
    return fail("the token is longer than 4096 bytes");
  }
  if (nl != std::string_view::npos) {
    for (char c : rest.substr(nl + 1)) {
      if (!Blank(c) && c != '\n') {
        return fail("more than one line; the token is the only line");
      }
    }
  }
  if (token.empty()) return fail("empty; it must hold the token");
  for (unsigned char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return fail("the token must be visible ASCII (no blanks inside)");
    }
  }
  return token;
}

std::string TokenSource(const Options& options, const std::string& env_token) {
  if (!options.token_file.empty()) return "file";
  if (!env_token.empty()) return "environment";
  if (!options.token.empty()) return "inline";
  return "none";
}

base::Result<std::string> ResolveToken(const Options& options,
                                       const std::string& env_token) {
  if (!options.token_file.empty()) return ReadTokenFile(options.token_file);
  if (env_token.empty()) return options.token;
  // Checked like a file's token; the message never shows the value.
  std::string_view why;
  if (env_token.size() > kMaxToken) why = "the token is longer than 4096 bytes";
  for (unsigned char c : env_token) {
    if (c < 0x21 || c > 0x7e) {
      why = "the token must be visible ASCII (no blanks inside)";
    }
  }
  if (!why.empty()) {
    return base::Status::Error(std::string(kTokenVariable) + ": " +
                               std::string(why));
  }
  return env_token;
}

}  // namespace api
