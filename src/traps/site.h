// The trap site, pure: a request (path, visitor, time) in, a response and
// the harvest record to store out. An endless tree of pages under
// Options::tree, each generated from its path and the signing key (no state
// per page): plausible text, addresses at the trap domains whose tokens
// attribute them to this visitor and minute, and links one level deeper.
// robots.txt disallows the tree, so crawlers that honour it stay out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "traps/options.h"
#include "traps/token.h"

namespace traps {

// The words of the pages' text: lower-case ASCII words of 3..12 letters
// from a word list (e.g. /usr/share/dict/words from wamerican), at most
// 100000; a missing or empty file gives a small built-in list.
std::vector<std::string> LoadWords(const std::string& path);

struct Visit {
  std::string_view path;  // decoded, as the HTTP layer gives it
  std::string_view ip;
  std::string_view user_agent;  // the listener bounds its length
  double wall_seconds = 0;      // Unix time of the visit
};

// One visitor's harvest in one minute; (ref, minute) is its key and is what
// the tokens it saw carry.
struct Harvest {
  uint32_t ref = 0;
  int64_t minute = 0;
  std::string ip;
  std::string user_agent;
  std::string page;
  std::string label;  // addresses made for elsewhere (spamsink traps): where
  double time = 0;
  int addresses = 0;  // shown on this page
};

struct Response {
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  std::optional<Harvest> harvest;  // set for pages that showed addresses
};

class Site {
 public:
  // REQUIRES: options.domains not empty; words not empty.
  Site(const Options& options, KeyRing keys, std::vector<std::string> words);

  // Any input: 200 for "/", robots.txt and pages of the tree; 400 for a
  // path that is not valid UTF-8, holds control characters, "..", "//" or
  // is longer than 1024 bytes; 404 for anything else.
  Response Serve(const Visit& visit) const;

  const KeyRing& keys() const { return keys_; }

 private:
  Response Page(const Visit& visit, std::string_view path) const;

  Options options_;
  KeyRing keys_;
  std::vector<std::string> words_;
};

// A plausible "first.last" for address number i of a seed.
std::string PersonName(uint64_t seed, int i);

}  // namespace traps
