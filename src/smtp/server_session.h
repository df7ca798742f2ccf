// The SMTP server engine: a pure state machine. Bytes go in; one Step comes
// out: how much input was consumed, the replies in order (each tagged with
// the stage of the dialogue it answers, which the tarpit paces), the events
// of the step and what to do next. It never touches a socket, a timer, a
// store or a global counter, so every protocol rule is tested with strings.
//
// Threading: one session belongs to one thread, and so does its Output.
// Memory: a session between commands holds no buffer; a partial command
// line is carried (bounded by max_line_length) only while it spans reads.
// Replies are written to an Output borrowed for the call (one per thread),
// so an idle session holds none.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "peer/summary.h"
#include "smtp/body_scanner.h"
#include "smtp/exim_size.h"
#include "smtp/message_tap.h"
#include "smtp/options.h"
#include "smtp/persona.h"

namespace smtp {

using peer::CloseReason;

enum class FinalReply { kAccept, kTempfail, kReject };

// Everything a session needs to know, shared read-only by all sessions.
struct SessionOptions {
  Persona persona;
  int max_line_length = 2048;
  int max_text_line_length = 0;
  int max_recipients = 1000;  // Postfix: smtpd_recipient_limit
  int64_t max_message_size = 10240000;
  int max_commands = 10000;
  int max_junk_commands = 100;
  int max_errors = 20;
  // Flow control: a step stops taking commands once its replies reach this
  // many bytes; the caller sends them, then feeds the rest of its input.
  size_t max_output = 16 * 1024;
  FinalReply final_reply = FinalReply::kAccept;
  bool auth = false;
  bool starttls = false;  // offer STARTTLS (only if TLS is set up)
  // Lower-case trap domains ([traps] domains): their recipients are kept in
  // ProtocolFacts::trap_rcpts. Set by the caller, not by MakeSessionOptions.
  std::vector<std::string> trap_domains;
  // Sampled capture ([capture]); null: off. Set by the caller.
  // REQUIRES: outlives every session.
  MessageTap* tap = nullptr;
};

// Builds options from the config; fails on an unknown persona.
base::Result<SessionOptions> MakeSessionOptions(const smtp::Options& c,
                                                const std::string& hostname,
                                                bool tls_available);

// Where in the dialogue a reply is sent (the tarpit has a delay per stage).
enum class Stage : uint8_t {
  kGreeting,
  kHelo,  // HELO, EHLO
  kMail,
  kRcpt,
  kData,     // the 354 (or refusal) answering DATA
  kDataEnd,  // the reply after the final "." or the last BDAT chunk
  kOther,    // any other reply
};
Stage StageOf(Reply r);

// Where one reply ends in Output::bytes, which reply it is, and its stage.
// sleeps: how many Rules::error_sleep_ms waits go before it (one per line,
// once the client has made Rules::soft_error_limit errors).
struct ReplyMark {
  uint32_t end;
  Reply reply;
  Stage stage;
  uint8_t sleeps = 0;
};

// The replies of one step. One per thread, reused by every session of that
// thread: a Step's views are valid until the next call on any session that
// shares it.
struct Output {
  std::string bytes;
  std::vector<ReplyMark> marks;
};

// What happened in one step, for the caller's metrics. The session's own
// totals are in facts().
struct Events {
  uint32_t commands = 0;
  uint32_t unknown_commands = 0;
  uint32_t syntax_errors = 0;  // 501 replies
  uint32_t bad_sequence = 0;   // 503 replies
  uint32_t long_lines = 0;
  uint32_t recipients = 0;
  uint32_t too_many_recipients = 0;
  uint32_t too_big = 0;
  uint32_t auth_attempts = 0;
  uint32_t messages = 0;  // bodies received within the limits
  uint32_t accepted = 0;
  uint32_t tempfailed = 0;
  uint32_t rejected = 0;  // 554, or refused for size or line length
  uint32_t limits_hit = 0;
  uint32_t limit_errors = 0;    // closed: max_errors
  uint32_t limit_commands = 0;  // closed: max_commands or max_junk_commands
  uint64_t bytes = 0;
  uint64_t bare_lf = 0;
  uint64_t bare_cr = 0;
};

enum class Action : uint8_t {
  kContinue,  // send the replies, read more
  kClose,     // send the replies, then close (close_reason says why)
  kStartTls,  // send the replies, discard unread input, handshake, then
              // call TlsStarted()
};

struct Step {
  size_t consumed = 0;
  std::string_view bytes;              // the replies, in order
  std::span<const ReplyMark> replies;  // one mark per reply
  Events events;
  Action action = Action::kContinue;
  // With kClose: why the engine ends the session (QUIT, a limit).
  CloseReason close_reason = CloseReason::kQuit;
};

class ServerSession {
 public:
  // REQUIRES: opts and out outlive the session.
  // client_ip is the text used in replies that show it; seed varies ids.
  ServerSession(const SessionOptions* opts, Output* out, std::string client_ip,
                uint64_t seed);

  // The banner; wall is the current Unix time (dates and ids use it).
  Step Greet(double wall);
  // A 554 banner instead (RFC 5321 3.1); every command but QUIT is then
  // answered 503.
  Step GreetRefused();
  // Consumes input, replying in order (RFC 2920). Stops early for kClose,
  // kStartTls, or when the replies reach max_output bytes (flow control:
  // feed the rest once they are sent); otherwise consumes everything.
  Step Feed(std::string_view input, double wall);
  // A 421 (timeout, shutdown, caps): the caller closes after sending it.
  Step Abort(Reply reply);

  // What the connection knows of the sender (the capture filter reads it
  // at each MAIL).
  void SetSenderEvidence(bool early_talker, bool tarpitted) {
    early_talker_ = early_talker;
    tarpitted_ = tarpitted;
  }
  // Overrides smtp.final_reply for this session (the tarpit's verdict).
  void SetFinalReply(FinalReply f) { final_reply_ = f; }
  // After a successful TLS handshake: back to the start; EHLO again.
  void TlsStarted();

  bool in_body() const { return state_ == State::kData; }
  bool tls_active() const { return tls_active_; }
  // What the dialogue has shown so far.
  const peer::ProtocolFacts& facts() const { return facts_; }
  // Frees the carry buffer if it is empty (call when the session idles).
  void Trim();

  // Parking (session_park.cc): a session idle between transactions (no
  // partial line, no transaction, BDAT, AUTH exchange or capture open)
  // packs the state its next command depends on into a few dozen bytes, so
  // that a held idle connection need not keep the ~500-byte engine. A
  // session made with the same options, Output and client_ip and then
  // Unpark()ed answers every later input exactly as the parked one would
  // have (server_session_test's ParkedSessionsAnswerAsIfNeverParked).
  bool Parkable() const;
  // REQUIRES: Parkable(). The packed state; its first bytes give its size.
  std::unique_ptr<uint8_t[]> Park() const;
  // REQUIRES: a fresh session (no input fed); parked from Park().
  void Unpark(const uint8_t* parked);
  // The protocol facts of a parked session, without unparking it.
  static peer::ProtocolFacts ParkedFacts(const uint8_t* parked);
  // The size of a parked session's bytes.
  static size_t ParkedSize(const uint8_t* parked);

  struct Command;
  enum class State : uint8_t {
    kFresh,      // no HELO/EHLO yet
    kGreeted,    // HELO/EHLO done, no transaction
    kMail,       // MAIL accepted: a Transaction is open
    kData,       // reading a DATA body
    kBdatChunk,  // reading BDAT chunk bytes
    kDiscard,    // discarding the rest of an overlong command line
    kAuth,       // waiting for an AUTH response line
    kRefused,    // greeted with 554: only QUIT
  };
  static const char* StateName(State s);

 private:
  // The command table: one row per verb, a check and a proceed
  // (server_session.cc).
  static const Command kCommands[];

  // MAIL .. end of data.
  struct Transaction {
    uint32_t rcpts = 0;
    uint64_t bdat_total = 0;           // BDAT bytes so far
    Reply bdat_error = Reply::kCount;  // kCount: chunks accepted so far
    uint64_t bdat_bare_lf = 0;         // LFs without a CR before them
    char bdat_last_byte = 0;           // the last chunk byte read
  };
  // The BDAT chunk being read (read whatever the verdict, RFC 3030 4.2).
  struct Chunk {
    uint64_t remaining = 0;
    uint64_t size = 0;
    bool last = false;
    Reply error = Reply::kCount;  // the reply decided at the BDAT command
    State resume = State::kFresh;
  };

  Step Begin();
  Step End(size_t consumed, Action a);
  void EnterState(State s);
  // Runs one command; at debug level also logs it (verb, argument size,
  // the first line of the reply).
  Action Dispatch(std::string_view line, double wall);
  Action Execute(std::string_view line, double wall);
  // counted: whether Rules::exim_error_limits counts it (Exim does not
  // count a few of its 501/503 replies).
  Action Error(Reply r, std::string_view arg = {}, bool counted = true);
  Action JunkError();
  // Rules::exim_error_limits (session_exim.cc): the reply for r, or Exim's
  // answer past its limits.
  Action EximError(Reply r, std::string_view arg, bool counted);
  void NoteEximRcptReply(size_t start);
  // Exim's check_sync(): true if the command must close the session with
  // kSyncError (it wants to come alone and more input is there).
  bool EximOutOfSync(std::string_view line, std::string_view verb,
                     std::string_view arg);
  void ForgetEximRcptReplies();
  Action Close(Reply r, CloseReason why);
  void ResetTransaction();
  void Append(Reply r, std::string_view arg = {}, uint64_t size = 0);
  // helo: the client's name, echoed where the persona's first line has
  // {helo}.
  void AppendEhlo(std::string_view helo);
  void MarkSleeps(size_t start);
  Action FinishMessage(double wall);
  Action FinishChunk(double wall);
  // bdat_size: the message's size as stored, after BDAT LAST.
  static constexpr uint64_t kNotBdat = ~uint64_t{0};
  Action AnswerMessage(double wall, uint64_t bdat_size = kNotBdat);
  void ReadBody(std::string_view rest, size_t* pos);
  // Sampled capture: copies body bytes of a sampled message (bounded by
  // max_message_size), hands a whole one to the tap.
  void CaptureBody(std::string_view bytes);
  void DeliverCapture(double wall, bool dot_stuffed);

  // Checks: Reply::kCount when the verb may proceed now, else the error.
  Reply CheckHelo(std::string_view arg) const;
  Reply CheckEhlo(std::string_view arg) const;
  Reply CheckEtrn(std::string_view arg) const;
  Reply CheckMail(std::string_view arg) const;
  Reply CheckRcpt(std::string_view arg) const;
  Reply CheckData(std::string_view arg) const;
  Reply CheckNoArgs(std::string_view arg) const;
  Reply CheckVrfy(std::string_view arg) const;
  Reply CheckExpn(std::string_view arg) const;
  Reply CheckHelp(std::string_view arg) const;
  Reply CheckStartTls(std::string_view arg) const;
  Reply CheckAuth(std::string_view arg) const;
  Reply CheckNothing(std::string_view) const { return Reply::kCount; }
  Reply CheckQuit(std::string_view arg) const;
  // Proceeds (the check passed).
  Action Helo(std::string_view arg, double wall);
  Action Ehlo(std::string_view arg, double wall);
  Action Mail(std::string_view arg, double wall);
  Action Rcpt(std::string_view arg, double wall);
  void NoteTrapRcpt(std::string_view address, std::string_view domain);
  Action Data(std::string_view arg, double wall);
  Action Bdat(std::string_view arg, double wall);
  Action Rset(std::string_view arg, double wall);
  Action Noop(std::string_view arg, double wall);
  Action Quit(std::string_view arg, double wall);
  Action Vrfy(std::string_view arg, double wall);
  Action Expn(std::string_view arg, double wall);
  Action Help(std::string_view arg, double wall);
  Action Etrn(std::string_view arg, double wall);
  Action StartTls(std::string_view arg, double wall);
  Action Auth(std::string_view arg, double wall);
  Action AuthResponse(std::string_view line);
  // Rules::exim_envelope (session_exim.cc): Exim's reading of the
  // arguments; the common tails open the transaction or add the recipient.
  static bool EximVerbComplete(std::string_view line, std::string_view verb);
  Action EximMail(std::string_view arg);
  Action EximRcpt(std::string_view arg);
  Action EximVrfy(std::string_view arg);
  // Rules::sendmail_sequence (session_sendmail.cc): the echo of an unknown
  // line, the path MAIL/RCPT show, whether the persona leaves a verb out
  // of its table (then unknown), and Sendmail's checks and answers.
  static std::string SendmailEcho(std::string_view line);
  static std::string_view SendmailPath(std::string_view after_colon);
  bool Unoffered(Action (ServerSession::*proceed)(std::string_view,
                                                  double)) const;
  Action SizeDeclined();  // SIZE= over the limit, counted
  Reply SendmailPregreet(Action (ServerSession::*proceed)(std::string_view,
                                                          double));
  Reply SendmailCheckHelo(std::string_view arg, Reply empty) const;
  Reply SendmailCheckVrfy(std::string_view arg) const;
  Action SendmailVrfy(std::string_view arg);
  static const char* SendmailLocalUser(std::string_view name);
  Action SendmailEtrn(std::string_view arg);
  Action Verb(std::string_view arg, double wall);
  Action SendmailUnknown(std::string_view verb, std::string_view line);
  Reply SendmailCheckAuth(std::string_view arg) const;
  Action SendmailAuth(std::string_view arg);
  Action SendmailAuthResponse(std::string_view line);
  Reply SendmailCheckPath(std::string_view path, std::string* shown) const;
  Action SendmailMail(std::string_view arg);
  Action SendmailHelp(std::string_view arg);
  Action SendmailRcpt(std::string_view arg);
  Action OpenTransaction(std::string_view address, std::string_view shown);
  Action AddRecipient(std::string_view address, std::string_view shown);

  const SessionOptions* opts_;
  Output* out_;
  Events* events_ = nullptr;  // the step being built
  CloseReason close_reason_ = CloseReason::kQuit;
  FinalReply final_reply_;
  std::string client_ip_;
  bool early_talker_ = false, tarpitted_ = false;
  std::string carry_;  // partial command line spanning reads
  peer::ProtocolFacts facts_;
  BodyScanner scanner_;
  // The sampled transaction's envelope and body; kept across a transaction
  // that ends without a message, so the sample goes to the next one.
  std::unique_ptr<CapturedMessage> capture_;
  bool capture_overflow_ = false;  // the body outgrew its bound: not kept
  QueueIdMaker ids_;
  Transaction txn_;
  Chunk chunk_;
  EximSizeCounter exim_size_;  // Rules::exim_bdat_total only
  State state_ = State::kFresh;
  State discard_resume_ = State::kFresh;  // state after an overlong line
  bool ehlo_ = false;                     // PIPELINING etc. offered
  bool tls_active_ = false;
  bool discard_cr_ = false;  // kDiscard: last byte seen was CR
  // Rules::truncate_long_lines: carry_ holds the first bytes of an
  // overlong line, dispatched when its end has been skipped.
  bool truncated_pending_ = false;
  // BDAT chunks until LAST (even refused ones): MAIL and DATA wait.
  bool bdat_open_ = false;
  uint64_t declared_size_ = 0;  // Rules::sticky_declared_size
  uint8_t auth_steps_ = 0;      // AUTH responses still expected
  uint32_t errors_ = 0;
  uint32_t junk_ = 0;
  uint8_t exim_unknown_ = 0;  // Rules::exim_error_limits
  // Exim's rcpt_smtp_response(_same): the first line of the replies to the
  // RCPT commands since the last reset, and whether they all were the same
  // (then DATA/BDAT without recipients quotes it; session_exim.cc).
  bool exim_rcpt_mixed_ = false;
  std::string exim_rcpt_reply_;
  uint8_t exim_synprot_ = 0;
  // Rules::exim_sequence: more input came after the command being run (in
  // the same read), and a DATA or BDAT has been seen (Exim's
  // pipe_connect_acceptable is off: commands that must come alone are
  // checked; session_exim.cc).
  bool input_pending_ = false;
  bool null_server_ = false;  // Sendmail's, after improper pipelining
  bool exim_synced_ = false;
};

}  // namespace smtp
