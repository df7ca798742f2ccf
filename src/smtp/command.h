// The command tokenizer: verbs, envelope paths and ESMTP parameters. Pure
// string functions, tested on their own (Postfix keeps its tokenizer apart
// from the engine for the same reason).
#pragma once

#include <string_view>
#include <vector>

namespace smtp {

// Splits "VERB rest" at the first space. The verb is returned as written.
void SplitCommand(std::string_view line, std::string_view* verb,
                  std::string_view* arg);

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

struct Param {
  std::string_view token;    // "KEYWORD=value" as written
  std::string_view keyword;  // as written
  std::string_view value;    // empty when the parameter has no "="
};

struct PathCommand {
  std::string_view address;  // without <>, source route removed; may be empty
  std::vector<Param> params;
};

// Parses the argument of MAIL ("FROM:<a@b> SIZE=1") or RCPT ("TO:<a@b>")
// given the expected prefix ("FROM:" or "TO:"). Returns false on a syntax
// error. Tolerates a space after the colon and a missing pair of brackets,
// as Postfix does.
bool ParsePathCommand(std::string_view arg, std::string_view prefix,
                      PathCommand* out);

// Whether an address (without brackets) is acceptable as a mailbox: no
// control bytes or spaces, at most 256 octets, an '@' unless it is
// "postmaster" (RFC 5321 4.5.1). UTF-8 is allowed (SMTPUTF8).
bool ValidMailbox(std::string_view address);

// Postfix's reading (strict_rfc821_envelopes = no): a bare local part is
// a mailbox, spaces are allowed inside quotes, no length limit but the
// line's; no control bytes, unquoted spaces or stray brackets.
bool LenientMailbox(std::string_view address);

// The domain of an address, after the last '@'; empty if none.
std::string_view DomainOf(std::string_view address);

// Parses a decimal count for SIZE= and BDAT; false on anything else or on
// overflow.
bool ParseCount(std::string_view text, uint64_t* out);

// NOTIFY=NEVER, or a list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1). When
// false and bad is given, *bad is the first element that is not one of them
// (empty for an empty list or element).
bool ValidNotify(std::string_view v, std::string_view* bad = nullptr);

}  // namespace smtp
