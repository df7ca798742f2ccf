// The SMTP server engine: a pure state machine. Bytes go in; replies (into a
// caller's buffer) and an action come out. It never touches a socket, a
// timer or a store, so every protocol rule is tested with strings.
//
// Threading: one session belongs to one thread.
// Memory: a session between commands holds no buffer; a partial command
// line is carried (bounded by max_line_length) only while it spans reads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/body_scanner.h"
#include "smtp/options.h"
#include "smtp/persona.h"
#include "smtp/session_record.h"

namespace smtp {

enum class FinalReply { kAccept, kTempfail, kReject };

// Everything a session needs to know, shared read-only by all sessions.
struct SessionOptions {
  Persona persona;
  int max_line_length = 512;
  int max_text_line_length = 1000;
  int max_recipients = 100;
  int64_t max_message_size = 10240000;
  int max_commands = 10000;
  int max_junk_commands = 100;
  int max_errors = 20;
  FinalReply final_reply = FinalReply::kAccept;
  bool auth = false;
  bool starttls = false;  // offer STARTTLS (only if TLS is set up)
};

// Builds options from the config; fails on an unknown persona.
base::Result<SessionOptions> MakeSessionOptions(const smtp::Options& c,
                                                const std::string& hostname,
                                                bool tls_available);

// Where one reply ends in the output, and which reply it is (the tarpit
// paces each reply by its stage).
struct ReplyMark {
  size_t end;
  Reply reply;
};

class ServerSession {
 public:
  enum class Action : uint8_t {
    kContinue,  // write the replies, read more
    kClose,     // write the replies, then close
    kStartTls,  // write the replies, discard unread input, handshake, then
                // call TlsStarted()
  };
  struct Step {
    size_t consumed;
    Action action;
  };

  // REQUIRES: opts and record outlive the session.
  // client_ip is the text used in replies that show it; seed varies ids.
  ServerSession(const SessionOptions* opts, SessionRecord* record,
                std::string client_ip, uint64_t seed);

  // Appends the banner.
  void Greet(double wall, std::string* out);
  // Appends a 554 banner instead (RFC 5321 3.1); every command but QUIT is
  // then answered 503.
  void GreetRefused(std::string* out);

  // When set, every reply appended to out also appends a mark (cleared by
  // the caller). REQUIRES: marks outlives the session or is reset.
  void SetReplyMarks(std::vector<ReplyMark>* marks) { marks_ = marks; }
  // Overrides smtp.final_reply for this session (the tarpit's verdict).
  void SetFinalReply(FinalReply f) { final_reply_ = f; }

  // Consumes input, appending replies to out in order (RFC 2920). Stops
  // early only for kClose or kStartTls; otherwise consumes everything.
  // wall is the current Unix time (queue ids and dates use it).
  Step Feed(std::string_view input, double wall, std::string* out);

  // After a successful TLS handshake: back to the start; EHLO again.
  void TlsStarted();

  // Appends a 421 (timeout, shutdown, caps) and records why.
  void Abort(Reply reply, CloseReason reason, std::string* out);

  bool in_body() const { return state_ == State::kData; }
  bool tls_active() const { return tls_active_; }
  // Frees the carry buffer if it is empty (call when the session idles).
  void Trim();
  const SessionRecord& record() const { return *record_; }

  struct Command;

 private:
  // The command table: one row per verb (server_session.cc).
  static const Command kCommands[];

  enum class State : uint8_t {
    kFresh,      // no HELO/EHLO yet
    kGreeted,    // HELO/EHLO done, no transaction
    kMail,       // MAIL accepted
    kData,       // reading a DATA body
    kBdatChunk,  // reading BDAT chunk bytes
    kDiscard,    // discarding the rest of an overlong command line
    kAuth,       // waiting for an AUTH response line
    kRefused,    // greeted with 554: only QUIT
  };

  Action Dispatch(std::string_view line, double wall, std::string* out);
  Action FinishMessage(double wall, std::string* out);
  Action FinishChunk(double wall, std::string* out);
  Action AnswerMessage(double wall, std::string* out);
  Action Error(Reply r, std::string* out, std::string_view arg = {});
  void ResetTransaction();
  void SetState(State s) { state_ = s; }
  void Append(Reply r, std::string* out, std::string_view arg = {},
              uint64_t size = 0);
  void AppendEhlo(std::string* out);

  // Handlers, one per verb (see the table in server_session.cc).
  Action Helo(std::string_view arg, double wall, std::string* out);
  Action Ehlo(std::string_view arg, double wall, std::string* out);
  Action Mail(std::string_view arg, double wall, std::string* out);
  Action Rcpt(std::string_view arg, double wall, std::string* out);
  Action Data(std::string_view arg, double wall, std::string* out);
  Action Bdat(std::string_view arg, double wall, std::string* out);
  Action Rset(std::string_view arg, double wall, std::string* out);
  Action Noop(std::string_view arg, double wall, std::string* out);
  Action Quit(std::string_view arg, double wall, std::string* out);
  Action Vrfy(std::string_view arg, double wall, std::string* out);
  Action Expn(std::string_view arg, double wall, std::string* out);
  Action Help(std::string_view arg, double wall, std::string* out);
  Action StartTls(std::string_view arg, double wall, std::string* out);
  Action Auth(std::string_view arg, double wall, std::string* out);
  Action AuthResponse(std::string_view line, std::string* out);

  const SessionOptions* opts_;
  SessionRecord* record_;
  std::vector<ReplyMark>* marks_ = nullptr;
  FinalReply final_reply_;
  std::string client_ip_;
  std::string helo_;   // last HELO/EHLO argument (bounded)
  std::string carry_;  // partial command line spanning reads
  BodyScanner scanner_;
  QueueIdMaker ids_;
  State state_ = State::kFresh;
  bool ehlo_ = false;  // PIPELINING etc. offered
  bool tls_active_ = false;
  bool discard_cr_ = false;  // kDiscard: last byte seen was CR
  uint8_t auth_steps_ = 0;   // AUTH responses still expected
  uint32_t rcpts_ = 0;       // in this transaction
  uint32_t errors_ = 0;
  uint32_t junk_ = 0;
  uint64_t bdat_remaining_ = 0;
  uint64_t bdat_total_ = 0;
  uint64_t bdat_chunk_ = 0;
  State bdat_resume_ = State::kFresh;
  State discard_resume_ = State::kFresh;  // state to return to after a chunk
  bool bdat_last_ = false;
  Reply bdat_error_ = Reply::kCount;  // kCount: chunk accepted
};

}  // namespace smtp
