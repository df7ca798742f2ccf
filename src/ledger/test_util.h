// Helpers shared by the ledger and API tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "base/ip.h"
#include "peer/summary.h"

namespace ledger::testing {

inline base::IpAddress Ip(const std::string& text) {
  return base::IpAddress::Parse(text).value();
}

// A session from ip with the given counts, ended at end_wall.
inline peer::SessionSummary Session(const std::string& ip, uint32_t messages,
                                    uint64_t bytes, double end_wall = 1.7e9,
                                    double duration = 2) {
  peer::SessionSummary s;
  s.client = Ip(ip);
  s.start_wall = end_wall - duration;
  s.end_wall = end_wall;
  s.duration_seconds = duration;
  s.transactions = messages;
  s.messages = messages;
  s.recipients = messages * 2;
  s.bytes = bytes;
  s.commands = 3 + messages * 4;
  s.close_reason = peer::CloseReason::kQuit;
  return s;
}

// A fresh directory for this test, removed on destruction.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name =
        std::string(info->test_suite_name()) + "." + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("spamsink_" + std::to_string(getpid()) + "_" + name);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const {
    return (path_ / name).string();
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace ledger::testing
