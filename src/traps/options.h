// The trap site's and trap addresses' settings ([traps] in the
// configuration): one struct with documented in-class defaults. Plain data;
// config/ parses and validates it.
#pragma once

#include <string>
#include <vector>

namespace traps {

struct Options {
  // Behaviour.
  bool enabled = false;  // serve the trap site (its own HTTP listener)
  // "host:port" of the trap site; meant to be public, separate from the API.
  std::string listen = "127.0.0.1:8026";
  // Domains whose addresses the site shows; their MX points at the sink. An
  // RCPT at one is never refused and is counted per domain.
  std::vector<std::string> domains;
  // Signing keys, "id:secret" (id 0..15, secret at least 16 bytes). The first
  // signs new addresses; the others are kept only to verify old ones (key
  // rotation). Empty with the site enabled: a start-up error.
  std::vector<std::string> keys;
  // The trap tree's root path; robots.txt disallows it.
  std::string tree = "/people/";
  // A word list (one word a line) for the pages' text; missing or empty: a
  // small built-in list.
  std::string words = "/usr/share/dict/words";
  int addresses_per_page = 6;  // half as mailto: links, half as plain text
  int links_per_page = 8;      // deeper pages
  // Cost per client.
  int threads = 4;          // requests served at once (cpp-httplib's pool)
  double read_timeout = 5;  // seconds to send a request
};

}  // namespace traps
