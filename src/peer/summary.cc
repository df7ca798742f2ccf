#include "peer/summary.h"

namespace peer {

const char* CloseReasonName(CloseReason r) {
  switch (r) {
    case CloseReason::kQuit:
      return "quit";
    case CloseReason::kClientClosed:
      return "client_closed";
    case CloseReason::kIdleTimeout:
      return "idle_timeout";
    case CloseReason::kSessionTimeout:
      return "session_timeout";
    case CloseReason::kTooManyErrors:
      return "too_many_errors";
    case CloseReason::kTooManyCommands:
      return "too_many_commands";
    case CloseReason::kTooManyJunk:
      return "too_many_junk_commands";
    case CloseReason::kCapTotal:
      return "cap_total";
    case CloseReason::kCapPerIp:
      return "cap_per_ip";
    case CloseReason::kShutdown:
      return "shutdown";
    case CloseReason::kTlsFailed:
      return "tls_failed";
    case CloseReason::kProxyError:
      return "proxy_error";
    case CloseReason::kRejected:
      return "rejected";
    case CloseReason::kIoError:
      return "io_error";
    case CloseReason::kMemoryLimit:
      return "memory_limit";
    case CloseReason::kCount:
      break;
  }
  return "unknown";
}

std::string CleanName(std::string_view name) {
  if (name.size() > kMaxNameLength) name = name.substr(0, kMaxNameLength);
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = char(c + 32);
    } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
      switch (c) {  // not a find in a set: that is a memchr call a byte
        case '-':
        case '.':
        case '_':
        case ':':
        case '[':
        case ']':
        case '<':
        case '>':
        case '@':
          break;
        default:
          c = '?';
      }
    }
  }
  return out;
}

void AddName(std::vector<NameCount>* list, std::string_view raw) {
  std::string name = CleanName(raw);
  for (auto& nc : *list) {
    if (nc.name == name) {
      ++nc.count;
      return;
    }
  }
  if (list->size() >= kMaxNames) return;
  list->push_back({std::move(name), 1});
}

}  // namespace peer
