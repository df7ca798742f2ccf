// libFuzzer target: the SMTP command tokenizer (smtp/command.h): verbs,
// envelope paths with ESMTP parameters, mailbox checks and counts. Every
// view it returns must lie inside its input.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "smtp/command.h"

namespace {
bool Inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() &&
          part.data() + part.size() <= whole.data() + whole.size());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  std::string_view verb, arg;
  smtp::SplitCommand(line, &verb, &arg);
  if (!Inside(verb, line) || !Inside(arg, line)) std::abort();
  for (std::string_view prefix : {"FROM:", "TO:"}) {
    smtp::PathCommand pc;
    if (!smtp::ParsePathCommand(arg, prefix, &pc)) continue;
    if (!Inside(pc.address, arg)) std::abort();
    for (const auto& p : pc.params) {
      if (!Inside(p.keyword, arg) || !Inside(p.value, arg)) std::abort();
    }
    if (smtp::ValidMailbox(pc.address)) {
      if (pc.address.size() > 256) std::abort();
      if (!Inside(smtp::DomainOf(pc.address), pc.address)) std::abort();
    }
  }
  uint64_t n;
  if (smtp::ParseCount(arg, &n) && arg.empty()) std::abort();
  return 0;
}
