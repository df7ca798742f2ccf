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
  int threads = 2;          // threads running the site's event loop
  double read_timeout = 5;  // seconds to send a request
  int max_clients = 4096;   // connections at once; more are closed at once
  // Slow responses (an HTTP tarpit): seconds over which a tree page's body
  // trickles out; 0: pages go out at once.
  double page_delay = 0;
  // Bounds on connections being trickled to, in all and per client address;
  // beyond them a page goes out at once.
  int max_slow_clients = 1000;
  int max_slow_per_client = 2;
  // Reverse proxies (CIDR or address) whose X-Forwarded-For is believed: a
  // request from one is the client's named there (the rightmost address
  // that is not itself a trusted proxy). From anyone else the header is
  // ignored.
  std::vector<std::string> trusted_proxies;
};

}  // namespace traps
