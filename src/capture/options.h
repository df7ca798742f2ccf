// Sampled capture's settings ([capture] in the configuration): plain data
// with documented defaults; config/ parses and validates them.
#pragma once

#include <cstdint>
#include <string>

namespace capture {

struct Options {
  // Behaviour.
  int sample_every = 0;  // keep 1 message in this many; 0: off
  std::string dir = "";  // the Maildir (tmp/, new/, cur/ made at start)
  int64_t max_bytes = 1ll << 30;  // total size kept; oldest deleted first
  double retention_days = 30;     // older samples deleted; 0: kept
  // Performance.
  int queue_messages = 64;  // samples waiting for the writer; more dropped
  int64_t queue_bytes = 64ll << 20;
};

}  // namespace capture
