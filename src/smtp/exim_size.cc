#include "smtp/exim_size.h"

namespace smtp {
namespace {

bool IsSpace(int c) {  // isspace() in the C locale
  return c == ' ' || (c >= '\t' && c <= '\r');
}

}  // namespace

void EximSizeCounter::Put(int c) {
  switch (phase_) {
    case Phase::kHeader:
      HeaderChar(c);
      break;
    case Phase::kBody:
      BodyChar(c);
      break;
    case Phase::kDone:
      break;
  }
}

// receive_msg()'s header loop, one input character (or kEof) at a time.
void EximSizeCounter::HeaderChar(int c) {
  if (pending_ == Pending::kEol) {
    // The peek after a line end: SP or TAB continues the header.
    pending_ = Pending::kNone;
    if (c == ' ' || c == '\t') {
      Note('\n');  // the line end is text now (counted at EOL)
      AddText(c);
      return;
    }
    EndHeaderLine(c == kEof);
    if (phase_ != Phase::kHeader) {
      if (c != kEof) Put(c);
      return;
    }
    if (c == kEof) return;
  }
  if (pending_ == Pending::kCr) {
    pending_ = Pending::kNone;
    if (c == '\n') {
      if (first_crlf_ < 0) first_crlf_ = 1;
      return HeaderEol(c);
    }
    // A bare CR is stored as LF SP; the character after it is read again.
    AddText('\n');
    AddText(' ');
    return HeaderChar(c);
  }
  if (c == kEof) return HeaderEol(c);
  if (c == '\n') {
    if (first_crlf_ < 0) {
      first_crlf_ = 0;
    } else if (first_crlf_ == 1) {
      HeaderEol(c);  // Exim ungets a space: the line continues
      return Put(' ');
    }
    return HeaderEol(c);
  }
  if (c == '\r') {
    pending_ = Pending::kCr;
    return;
  }
  AddText(c);
}

// EOL: the line end is stored as LF and counted; an empty line ends the
// header section; else the next character decides (continuation or not).
void EximSizeCounter::HeaderEol(int c) {
  ++lines_;
  ++size_;
  if (line_empty_) {
    phase_ = c == kEof ? Phase::kDone : Phase::kBody;
    return;
  }
  if (c == kEof) {
    EndHeaderLine(true);
    return;
  }
  pending_ = Pending::kEol;
}

void EximSizeCounter::AddText(int c) {
  line_empty_ = false;
  ++size_;
  Note(c);
}

void EximSizeCounter::Note(int c) {
  // Trailing empty continuation lines are cut from a header.
  if (c == '\n') {
    ++trim_;
  } else if (c == ' ' || c == '\t') {
    if (trim_ > 0) ++trim_;
  } else {
    trim_ = 0;
  }
  // A header: graphic characters but ':', white space, then ':'.
  switch (check_) {
    case Check::kStart:
      if (IsSpace(c)) {
        check_ = Check::kNo;
        break;
      }
      [[fallthrough]];
    case Check::kName:
      if (c > ' ' && c < 0x7f && c != ':') {
        check_ = Check::kName;
        break;
      }
      [[fallthrough]];
    case Check::kSpace:
      check_ = c == ':' ? Check::kYes : IsSpace(c) ? Check::kSpace : Check::kNo;
      break;
    case Check::kYes:
    case Check::kNo:
      break;
  }
}

// The real end of a header line (no continuation follows).
void EximSizeCounter::EndHeaderLine(bool eof) {
  if (check_ == Check::kYes) {
    size_ -= trim_;
    check_ = Check::kStart;
    trim_ = 0;
    line_empty_ = true;
    if (eof) phase_ = Phase::kDone;
    return;
  }
  // The first body line: written to the spool and counted once more.
  ++lines_;
  last_is_lf_ = true;
  phase_ = eof ? Phase::kDone : Phase::kBody;
}

// read_message_bdat_smtp(): CR LF, CR and LF end a line, stored as LF.
void EximSizeCounter::BodyChar(int c) {
  switch (body_) {
    case Body::kLfSeen:
      body_ = Body::kMidLine;
      [[fallthrough]];
    case Body::kMidLine:
      if (c == '\n') {
        body_ = Body::kLfSeen;
        ++lines_;
      } else if (c == '\r') {
        body_ = Body::kCrSeen;
        return;
      }
      break;
    case Body::kCrSeen:
      ++lines_;
      if (c == '\n') {
        body_ = Body::kLfSeen;
      } else {
        ++size_;
        last_is_lf_ = true;
        if (c == '\r') return;
        body_ = Body::kMidLine;
      }
      break;
  }
  ++size_;
  last_is_lf_ = c == '\n';
}

uint64_t EximSizeCounter::Finish() {
  if (phase_ == Phase::kHeader) HeaderChar(kEof);
  if (phase_ == Phase::kHeader) HeaderChar(kEof);  // after a pending peek
  if (phase_ == Phase::kBody && !last_is_lf_) {
    // Exim adds the missing line end: one more line and one LF.
    ++lines_;
    ++size_;
  }
  phase_ = Phase::kDone;
  return size_ + lines_;
}

}  // namespace smtp
