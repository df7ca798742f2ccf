// The exim persona's replies that depend on the session so far: the name
// echoed by HELO/EHLO, Exim's error limits.
#include <gtest/gtest.h>

#include "smtp/server_session.h"

namespace smtp {
namespace {

class EximSession : public ::testing::Test {
 protected:
  void SetUp() override {
    Options cfg;
    cfg.persona = "exim";
    opts_ = MakeSessionOptions(cfg, "mx.example.net", false).value();
    s_ = std::make_unique<ServerSession>(&opts_, &buf_, "198.51.100.7", 1);
    s_->Greet(1764111000);
  }
  std::string Send(std::string_view in) {
    Step step = s_->Feed(in, 1764111000);
    action_ = step.action;
    return std::string(step.bytes);
  }
  SessionOptions opts_;
  Output buf_;
  std::unique_ptr<ServerSession> s_;
  Action action_ = Action::kContinue;
};

// Exim echoes the whole name, however long (spamsink bounds it by twice
// the command line's limit).
TEST_F(EximSession, HeloAndEhloEchoTheWholeName) {
  std::string name(300, 'h');
  name += ".example";
  EXPECT_EQ(Send("HELO " + name + "\r\n"),
            "250 mx.example.net Hello " + name + " [198.51.100.7]\r\n");
  std::string ehlo = Send("EHLO " + name + "\r\n");
  EXPECT_TRUE(ehlo.starts_with("250-mx.example.net Hello " + name +
                               " [198.51.100.7]\r\n"))
      << ehlo;
}

}  // namespace
}  // namespace smtp
