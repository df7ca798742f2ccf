// Sendmail's HELP topics (sendmail_help.cc), for the sendmail persona.
#pragma once

#include <string_view>

namespace smtp {

// The lines of a HELP topic (lower case, as srvrsmtp.c looks it up), each
// ending in '\n'; empty if Sendmail knows no such topic. "smtp" (plain
// HELP) is the persona's Reply::kHelp instead.
std::string_view SendmailHelpTopic(std::string_view topic);

}  // namespace smtp
