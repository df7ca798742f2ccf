// The connection machine's test fixture (connection_test.cc,
// connection_end_test.cc, park_test.cc), driven by hand: no sockets, a
// fake clock. Each test plays the executor: it carries out the machine's
// commands (a send takes as many bytes as the test's "socket" has room
// for) and feeds back events. Included by the conn tests only.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/metrics.h"
#include "conn/connection.h"
#include "conn/plan_table.h"

namespace conn {
namespace {

using Kind = Command::Kind;
using std::chrono::seconds;

class FixedRandom final : public tarpit::Random {
 public:
  double Uniform() override { return 0.5; }
};

// One write the machine made: the wait before it, and the bytes.
struct Write {
  double wait;  // seconds waited on the machine's timer since the last write
  std::string bytes;
};

class Machine : public ::testing::Test, public Host {
 protected:
  void SetUp() override {
    smtp_ = Options(false);
    tarpit_.enabled = false;
  }
  smtp::SessionOptions Options(bool tls) {
    smtp::Options c;
    c.starttls = tls;
    return smtp::MakeSessionOptions(c, "mx.test", tls).value();
  }
  // A tarpit that holds everyone: a fixed delay per stage and, if
  // stutter, one byte per second.
  void HoldAll(bool stutter) {
    tarpit_.enabled = true;
    for (auto* r :
         {&tarpit_.greeting, &tarpit_.helo, &tarpit_.mail, &tarpit_.rcpt,
          &tarpit_.data, &tarpit_.data_end, &tarpit_.reply}) {
      *r = {3, 3};
    }
    tarpit_.jitter = 0;
    tarpit_.stutter = stutter;
    tarpit_.stutter_bytes = 1;
    tarpit_.stutter_interval = 1;
  }
  void Begin(bool trusted = false, std::string ip = "192.0.2.7") {
    env_ = Env{&limits_, &smtp_, &tarpit_, &clock_,   &random_,
               &output_, this,   &gauges_, &stopping_};
    env_.plans = &plans_;
    m_ = std::make_unique<Connection>(&env_);
    c_ = m_->Start(*base::IpAddress::Parse(ip), 4000, trusted);
    Pump();
  }

  // Host.
  int Enter(const base::IpAddress& ip) override { return ++per_ip_[ip]; }
  void Leave(const base::IpAddress& ip) override { --per_ip_[ip]; }
  peer::History History(const base::IpAddress&) override { return history_; }

  // Carries out sends, half closes and (when fire) timers, until the
  // machine waits for the client, the timer or TLS, or closes.
  void Pump(bool fire = true) {
    double waited = 0;
    for (int guard = 0; guard < 100000; ++guard) {
      switch (c_.kind) {
        case Kind::kSend: {
          clock_.Advance(send_cost_);
          size_t take = std::min(room_, c_.data.size());
          room_ -= take;
          if (take > 0) {
            writes_.push_back({waited, std::string(c_.data.substr(0, take))});
            wire_ += c_.data.substr(0, take);
            waited = 0;
          }
          if (take == 0 && c_.wait) return;  // stalled: the socket is full
          c_ = m_->OnSent(take);
          continue;
        }
        case Kind::kHalfClose:
          half_closed_ = true;
          c_ = m_->OnHalfClosed(true);
          continue;
        case Kind::kWait:
          if (!fire) return;
          clock_.Advance(c_.delay);
          waited += std::chrono::duration<double>(c_.delay).count();
          c_ = m_->OnTimer(pending_input_);
          continue;
        default:
          return;
      }
    }
    FAIL() << "the machine does not stop";
  }
  // The client sends bytes (the machine must be reading).
  void Client(std::string_view bytes) {
    while (!bytes.empty()) {
      ASSERT_EQ(c_.kind, Kind::kRead) << "not reading";
      size_t n = std::min(bytes.size(), c_.bytes);
      c_ = m_->OnRead(bytes.substr(0, n));
      bytes.remove_prefix(n);
      Pump();
    }
  }
  std::string Take() {
    std::string w = wire_;
    wire_.clear();
    writes_.clear();
    return w;
  }

  base::FakeClock clock_;
  Limits limits_;
  smtp::SessionOptions smtp_;
  tarpit::Options tarpit_;
  FixedRandom random_;
  smtp::Output output_;
  Gauges gauges_;
  bool stopping_ = false;
  PlanTable plans_;  // before m_: its plan is released into it
  Env env_{};
  std::map<base::IpAddress, int> per_ip_;
  peer::History history_;
  std::unique_ptr<Connection> m_;
  Command c_;
  size_t room_ = SIZE_MAX;      // bytes the client's socket still takes
  base::Duration send_cost_{};  // time each write takes (a busy server)
  bool pending_input_ = false;
  bool half_closed_ = false;
  std::string wire_;
  std::vector<Write> writes_;
};

}  // namespace
}  // namespace conn
