// The pure parts of sampled capture: a sampled message made into the .eml
// file kept in the Maildir (the sink's view prepended as headers, the DATA
// stream unstuffed), Maildir file names, and the mbox form of a file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "smtp/message_tap.h"

namespace capture {

// Undoes DATA's dot-stuffing (RFC 5321 4.5.2) and drops the terminating
// ".\r\n": what the sender meant. Only CR LF ends a line, as in the scanner.
std::string Unstuff(std::string_view raw);

// The file: "Return-Path" and "X-Spamsink-*" headers (source, HELO,
// envelope sender and recipients, TLS, evidence, sink id, time), then the
// message. Client-supplied values are cleaned: bytes outside printable
// ASCII become '?', so no header can be injected.
std::string FormatMessage(const smtp::CapturedMessage& m,
                          std::string_view sink_id);

// A Maildir name "SSSSSSSSSS.MuuuuuuPpidQseq.host": sorts by time as text
// (ten-digit seconds until 2286). host is cleaned to [A-Za-z0-9-.]: '/' and
// ':' are special in Maildir.
std::string MakeName(double wall, int pid, uint64_t seq, std::string_view host);
// The Unix seconds a name starts with, or -1 when it is not one of ours.
int64_t NameSeconds(std::string_view name);
// True for a name an API client may ask for: [A-Za-z0-9._-], 1..200 bytes,
// not starting with '.' (never a path).
bool ValidId(std::string_view id);

// One message in mboxrd form: a "From " line, lines ending in LF, and
// lines matching ^>*From quoted with one more '>'; a blank line follows.
std::string MboxEntry(std::string_view file, double wall);

// "X-Spamsink-Source" of a file's head (empty if absent).
std::string HeaderValue(std::string_view file, std::string_view name);

}  // namespace capture
