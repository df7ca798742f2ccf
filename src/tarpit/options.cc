#include "tarpit/options.h"

#include <array>
#include <utility>

namespace tarpit {
namespace {

constexpr std::array<std::pair<Mode, const char*>, 3> kModes = {{
    {Mode::kKeepTalking, "keep_talking"},
    {Mode::kGiveUp, "give_up"},
    {Mode::kEscalate, "escalate"},
}};
constexpr std::array<std::pair<Verdict, const char*>, 4> kVerdicts = {{
    {Verdict::kDefault, "default"},
    {Verdict::kAccept, "accept"},
    {Verdict::kTempfail, "tempfail"},
    {Verdict::kReject, "reject"},
}};

template <typename E, size_t N>
const char* NameOf(const std::array<std::pair<E, const char*>, N>& table,
                   E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "?";
}

template <typename E, size_t N>
std::optional<E> Parse(const std::array<std::pair<E, const char*>, N>& table,
                       std::string_view name) {
  for (const auto& [v, n] : table) {
    if (name == n) return v;
  }
  return std::nullopt;
}

}  // namespace

const char* ModeName(Mode mode) { return NameOf(kModes, mode); }
std::optional<Mode> ParseMode(std::string_view name) {
  return Parse(kModes, name);
}
const char* VerdictName(Verdict verdict) { return NameOf(kVerdicts, verdict); }
std::optional<Verdict> ParseVerdict(std::string_view name) {
  return Parse(kVerdicts, name);
}

bool Exempt(const Options& options, const base::IpAddress& ip) {
  for (const auto& text : options.exempt) {
    auto net = base::Cidr::Parse(text);
    if (net.ok() && net->Contains(ip)) return true;
  }
  return false;
}

}  // namespace tarpit
