// The exim persona's replies that depend on the session so far: the name
// echoed by HELO/EHLO, Exim's error limits.
#include <gtest/gtest.h>

#include "smtp/server_session.h"

namespace smtp {
namespace {

class EximSession : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }
  void Start() {
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

// smtp_max_unknown_commands = 3: the 4th unknown command is refused and
// the call dropped.
TEST_F(EximSession, FourthUnknownCommandDrops) {
  Send("EHLO c.example\r\n");
  EXPECT_EQ(Send("FOO\r\nBAR\r\nBAZ\r\n"),
            "500 unrecognized command\r\n500 unrecognized command\r\n"
            "500 unrecognized command\r\n");
  EXPECT_EQ(action_, Action::kContinue);
  EXPECT_EQ(Send("QUUX\r\nNOOP\r\n"), "500 Too many unrecognized commands\r\n");
  EXPECT_EQ(action_, Action::kClose);
}

// smtp_max_synprot_errors = 3: the 4th syntax or protocol error (unknown
// commands count) is answered with a continued reply and a last line;
// replies Exim does not count (VRFY's, an address without a domain, HELO
// required) do not bring it closer.
TEST_F(EximSession, FourthSyntaxErrorDropsWithTwoLines) {
  EXPECT_EQ(Send("MAIL FROM:<a@b.example>\r\n"),
            "503 HELO or EHLO required\r\n");
  Send("EHLO c.example\r\n");
  Send("VRFY\r\nMAIL FROM:<a>\r\n");
  EXPECT_EQ(Send("RCPT TO:<b@c.example>\r\nFOO\r\nMAIL FROM:\r\n"),
            "503 sender not yet given\r\n500 unrecognized command\r\n"
            "501 MAIL must have an address operand\r\n");
  EXPECT_EQ(action_, Action::kContinue);
  // The RCPT's refusal is quoted first (rcpt_smtp_response, see below).
  EXPECT_EQ(Send("DATA\r\nNOOP\r\n"),
            "503-All RCPT commands were rejected with this error:\r\n"
            "503-503 sender not yet given\r\n"
            "503-valid RCPT command must precede DATA\r\n"
            "503 Too many syntax or protocol errors\r\n");
  EXPECT_EQ(action_, Action::kClose);
}

// A bad HELO past the limit: its plain reply, then the drop.
TEST_F(EximSession, BadHeloPastTheLimitDrops) {
  Send("FOO\r\nBAR\r\nBAZ\r\n");
  EXPECT_EQ(Send("HELO bad!name\r\n"),
            "501 Syntactically invalid HELO argument(s)\r\n");
  EXPECT_EQ(action_, Action::kClose);
}

// A NUL anywhere: Exim's own reply. A verb not followed by a space (a TAB,
// a CR) is unknown; trailing white space is not part of the line.
TEST_F(EximSession, NulTabAndCrInCommandLines) {
  EXPECT_EQ(Send(std::string("NO\0OP\r\n", 7)),
            "501 NUL characters are not allowed in SMTP commands\r\n");
  EXPECT_EQ(Send("EHLO\tc.example\r\n"), "500 unrecognized command\r\n");
  EXPECT_EQ(Send("NOOP\rX\r\n"), "500 unrecognized command\r\n");
  Start();
  EXPECT_EQ(Send("NOOP \t\r\n"), "250 OK\r\n");
}

// rcpt_smtp_response: when every RCPT since the reset got the same reply
// and none was accepted, DATA quotes it (as the real Exim did on the
// corpus: rset-mid-transaction).
TEST_F(EximSession, DataQuotesTheOneRcptRefusal) {
  Send("EHLO c.example\r\n");
  Send("MAIL FROM:<a@example.org>\r\n");
  Send("RCPT TO:<b@example.net>\r\n");
  Send("RSET\r\n");
  EXPECT_EQ(Send("RCPT TO:<b@example.net>\r\n"),
            "503 sender not yet given\r\n");
  EXPECT_EQ(Send("DATA\r\n"),
            "503-All RCPT commands were rejected with this error:\r\n"
            "503-503 sender not yet given\r\n"
            "503 valid RCPT command must precede DATA\r\n");
  // Different refusals: the plain reply.
  Start();
  Send("EHLO c.example\r\n");
  Send("MAIL FROM:<a@example.org>\r\n");
  Send("RCPT TO:<b>\r\n");
  Send("RCPT TO:<c>\r\n");
  EXPECT_EQ(Send("DATA\r\n"), "503 valid RCPT command must precede DATA\r\n");
}

// "BDAT n WORD": Exim takes any word but LAST for a non-last chunk; the
// LAST reply gives Exim's total (exim_size.h).
TEST_F(EximSession, BdatReportsEximsTotal) {
  Send("EHLO c.example\r\n");
  Send("MAIL FROM:<a@example.org>\r\n");
  Send("RCPT TO:<b@example.net>\r\n");
  EXPECT_EQ(Send("BDAT 6 FIRST\r\nhello\n"), "250 6 byte chunk received\r\n");
  EXPECT_EQ(Send("\r\n"), "503 only BDAT permissible after non-LAST BDAT\r\n");
  std::string last = Send("BDAT 7 LAST\r\nworld\r\n");
  EXPECT_TRUE(last.starts_with("250- 7 byte chunk, total 15\r\n250 OK id="))
      << last;
}

// QUIT inside a BDAT sequence: Exim's bdat_getc() says 221, then
// receive_msg() finds the input ended and says 421 (real Exim 4.96 in the
// corpus's rcpt/bdat-chunk).
TEST_F(EximSession, QuitInsideBdatReportsTheMessageLost) {
  Send("EHLO c.example\r\n");
  Send("MAIL FROM:<a@example.org>\r\n");
  Send("RCPT TO:<b@example.net>\r\n");
  EXPECT_EQ(Send("BDAT 5\r\nhello"), "250 5 byte chunk received\r\n");
  EXPECT_EQ(Send("QUIT\r\n"),
            "221 mx.example.net closing connection\r\n"
            "421 Lost incoming connection\r\n");
  EXPECT_EQ(action_, Action::kClose);
}

// Without PIPELINING (HELO), Exim re-checks synchronization after it
// accepted a recipient: more input waiting drops the call with 554.
TEST_F(EximSession, PipelinedRcptAfterHeloIsASyncError) {
  EXPECT_EQ(Send("HELO c.example\r\nMAIL FROM:<a@example.org>\r\n"
                 "RCPT TO:<b@example.net>\r\nNOOP\r\n"),
            "250 mx.example.net Hello c.example [198.51.100.7]\r\n"
            "250 OK\r\n554 SMTP synchronization error\r\n");
  EXPECT_EQ(action_, Action::kClose);
}

// The same RCPT alone in its read is accepted.
TEST_F(EximSession, RcptAloneAfterHeloIsAccepted) {
  Send("HELO c.example\r\nMAIL FROM:<a@example.org>\r\n");
  EXPECT_EQ(Send("RCPT TO:<b@example.net>\r\n"), "250 Accepted\r\n");
  EXPECT_EQ(action_, Action::kContinue);
}

// After a DATA or BDAT, a command that must come alone (NOOP) with more
// input behind it is a synchronization error; before it, it is not.
TEST_F(EximSession, SyncCommandsAreCheckedAfterTheFirstMessage) {
  EXPECT_EQ(Send("EHLO c.example\r\nNOOP\r\nNOOP\r\n").substr(0, 4), "250-");
  EXPECT_EQ(action_, Action::kContinue);
  std::string r = Send(
      "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
      "BDAT 3 LAST\r\nabcNOOP\r\nNOOP\r\n");
  EXPECT_TRUE(r.ends_with("\r\n554 SMTP synchronization error\r\n")) << r;
  EXPECT_EQ(action_, Action::kClose);
}

}  // namespace
}  // namespace smtp
