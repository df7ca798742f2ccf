// The "total" Exim 4.96 reports after BDAT LAST ("250- N byte chunk, total
// M"), for the exim persona (Rules::exim_bdat_total). Exim prints
// message_size + message_linecount as receive_msg() and
// read_message_bdat_smtp() count them (receive.c): line ends are stored as
// LF, a bare CR in the header section becomes LF SP, a bare CR in the body
// ends a line, a missing final line end is added, empty continuation lines
// at the end of a header are dropped, and the first line that is not a
// header (it ends the header section) is counted twice (once as a header
// line, once as a body line). A client can thus tell a sink that reports
// the plain octet count. Streaming, O(1) state; fed the chunk octets in
// order, chunk boundaries are transparent (as in Exim's bdat_getc).
#pragma once

#include <cstdint>
#include <string_view>

namespace smtp {

class EximSizeCounter {
 public:
  void Feed(std::string_view bytes) {
    for (char c : bytes) Put(static_cast<unsigned char>(c));
  }
  // Ends the message (the LAST chunk was read) and returns the total. The
  // counter is left ended; Reset() before the next message.
  uint64_t Finish();
  void Reset() { *this = EximSizeCounter(); }

 private:
  enum class Phase : uint8_t { kHeader, kBody, kDone };
  enum class Pending : uint8_t { kNone, kCr, kEol };
  enum class Check : uint8_t { kStart, kName, kSpace, kYes, kNo };
  enum class Body : uint8_t { kLfSeen, kMidLine, kCrSeen };
  static constexpr int kEof = -1;

  void Put(int c);
  void HeaderChar(int c);
  void HeaderEol(int c);
  void AddText(int c);  // a character of the current header's text
  void Note(int c);     // the header check and trim, without counting
  void EndHeaderLine(bool eof);
  void BodyChar(int c);

  Phase phase_ = Phase::kHeader;
  Pending pending_ = Pending::kNone;
  Check check_ = Check::kStart;
  Body body_ = Body::kLfSeen;
  int8_t first_crlf_ = -1;  // -1 unset, 0 LF, 1 CR LF (first line end)
  bool line_empty_ = true;  // no text in the current header line yet
  bool last_is_lf_ = true;  // the last octet Exim wrote to its spool
  uint64_t trim_ = 0;       // trailing "\n[ \t]*" run of the header
  uint64_t size_ = 0;       // message_size
  uint64_t lines_ = 0;      // message_linecount + body_linecount
};

}  // namespace smtp
