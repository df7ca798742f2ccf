// Exim 4.96's reading of envelope arguments, for the exim persona
// (Rules::exim_envelope): how it takes ESMTP options off the end of a MAIL
// argument and how it parses an address, with its error texts, so that a
// client probing with malformed envelopes gets the replies the real daemon
// gives. Written from the behaviour of the real daemon on the differential
// corpus (tests/differential), not from its code. Pure string functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace smtp {

// One option taken off the end of an argument: "NAME=value", or a bare
// word (then value == name).
struct EximOption {
  std::string_view name;
  std::string_view value;
};

// Takes the last option off *data (trailing blanks dropped first): a word
// after a blank, or NAME=value with an alphabetic NAME after a blank. A
// quoted string is skipped whole. False (and *data unchanged) if there is
// none.
bool EximTakeOption(std::string_view* data, EximOption* opt);

struct EximAddress {
  std::string error;         // empty: parsed
  std::string_view mailbox;  // local@domain, without <> or a source route
  bool has_domain = false;
  bool null = false;  // "<>"
};

// Parses an address as Exim does: an addr-spec, or a phrase and <route-addr>,
// a source route ignored, "<>" only if allow_null, domain literals refused,
// nothing after the address, at most 255 octets. On failure error holds the
// text Exim puts after "501 <argument>: ".
EximAddress EximParseAddress(std::string_view s, bool allow_null);

}  // namespace smtp
