// Personas: the texts a real server would send, so that a sink cannot be
// told from that server at a glance. Each persona keeps its banner, EHLO
// keywords, reply texts, enhanced status codes and queue-id format
// consistent with the server it imitates.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace smtp {

// Every reply the engine can send. Templates may contain {host}, {id},
// {date}, {arg}, {client}, {helo}, {size} (expanded when sent).
enum class Reply : int {
  kGreeting,
  kHelo,
  kEhloFirst,  // first line of the EHLO reply (keywords follow)
  kMailOk,
  kRcptOk,
  kDataGo,
  kQueued,     // 250 after the message, {id} = queue id
  kBdatChunk,  // 250 after a non-final BDAT chunk, {size} = chunk octets
  kRset,
  kNoop,
  kQuit,
  kVrfy,
  kExpn,
  kHelp,
  kStartTls,
  kAuthChallengeUser,   // 334 for AUTH LOGIN, username
  kAuthChallengePass,   // 334 for AUTH LOGIN, password
  kAuthChallengePlain,  // 334 for AUTH PLAIN without an initial response
  kAuthFailed,
  kAuthNotEnabled,
  kTempfail,  // final_reply = tempfail
  kRejected,  // final_reply = reject
  kUnknown,   // unrecognised verb
  kNotImplemented,
  kSyntaxHelo,
  kSyntaxEhlo,
  kSyntaxMail,
  kSyntaxRcpt,
  kSyntaxData,
  kSyntaxBdat,
  kSyntaxNoArgs,  // {arg} = verb that takes no parameters
  kBadSender,
  kBadRecipient,
  kBadParameter,  // {arg} = parameter
  kNeedHelo,
  kNeedMail,
  kNeedRcpt,
  kNestedMail,
  kTooManyRecipients,
  kTooBig,           // message over the limit
  kSizeDeclined,     // MAIL SIZE= over the limit
  kLineTooLong,      // command line
  kTextLineTooLong,  // message text line
  kTooManyErrors,
  kTooManyCommands,
  kIdleTimeout,
  kSessionTimeout,
  kCapTotal,
  kCapPerIp,  // {client}
  kShutdown,
  kTlsNotAvailable,
  kBadSequenceTls,   // STARTTLS inside a transaction
  kGreetingRefused,  // 554 greeting (early talker); then only QUIT
  kOnlyQuit,         // any command after a 554 greeting
  kCount
};

struct Persona {
  std::string name;
  std::array<std::string, int(Reply::kCount)> replies;
  // EHLO keywords after the first line; "SIZE" is followed by the limit.
  std::vector<std::string> ehlo_keywords;
  bool enhanced_codes = true;  // whether ENHANCEDSTATUSCODES is advertised
  enum class QueueId { kPostfix, kExim, kSendmail, kExchange } queue_id;
};

struct PersonaTexts {  // for the custom persona
  std::string banner, ehlo_greeting, ok, queued, bye;
};

// Builds a persona by name with {host} already expanded.
base::Result<Persona> MakePersona(std::string_view name,
                                  const std::string& hostname,
                                  const PersonaTexts& custom);

// Makes queue ids in a persona's format from a cheap per-session generator.
class QueueIdMaker {
 public:
  explicit QueueIdMaker(uint64_t seed) : state_(seed | 1) {}
  // Appends a fresh id to out; wall is the Unix time (encoded by some
  // formats, as the real servers do).
  void Append(Persona::QueueId format, double wall, std::string* out);

 private:
  uint64_t Next();
  uint64_t state_;
};

// "Wed, 25 Nov 2026 22:50:00 +0000" (RFC 5322 date) for banners.
std::string Rfc5322Date(double wall);

}  // namespace smtp
