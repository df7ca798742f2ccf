#include "ledger/source.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ledger {
namespace {

const std::vector<std::string_view> kEvidenceNames = {
    "early_talker",     "pipelining",      "bare_lf",    "bare_cr",
    "unknown_commands", "protocol_errors", "limits_hit", "auth_attempts"};

size_t NamesBytes(const std::vector<peer::NameCount>& names) {
  size_t n = names.capacity() * sizeof(peer::NameCount);
  for (const auto& e : names) {
    if (e.name.size() > 15) n += e.name.capacity() + 1;
  }
  return n;
}

}  // namespace

bool ParseEvidence(std::string_view name, Evidence* out) {
  for (size_t i = 0; i < kEvidenceNames.size(); ++i) {
    if (kEvidenceNames[i] == name) {
      *out = Evidence(1u << i);
      return true;
    }
  }
  return false;
}

const std::vector<std::string_view>& EvidenceNames() { return kEvidenceNames; }

uint32_t SourceRecord::EvidenceMask() const {
  const uint64_t v[] = {early_talker, pipelining,       bare_lf,
                        bare_cr,      unknown_commands, protocol_errors,
                        limits_hit,   auth_attempts};
  uint32_t mask = 0;
  for (size_t i = 0; i < std::size(v); ++i) {
    if (v[i] != 0) mask |= 1u << i;
  }
  return mask;
}

size_t SourceRecord::ApproxBytes() const {
  return sizeof(SourceRecord) + NamesBytes(helo_names) +
         NamesBytes(mail_from_domains) + NamesBytes(rcpt_domains) +
         addresses.capacity() * sizeof(AddressCount);
}

uint64_t SourceRecord::DistinctAddresses() const {
  if (addresses.size() < kMaxSampledAddresses) return addresses.size();
  int set = 0;
  for (uint64_t w : address_sketch) set += std::popcount(w);
  constexpr double kBits = 64.0 * std::tuple_size_v<AddressSketch>;
  // Linear counting: n = m ln(m / zeros); a full sketch says "at least" the
  // estimate for one zero bit.
  double zeros = std::max(1.0, kBits - set);
  auto estimate = uint64_t(std::llround(kBits * std::log(kBits / zeros)));
  return std::max<uint64_t>(estimate, addresses.size());
}

void SampleAddress(SourceRecord* rec, const base::IpAddress& a,
                   uint64_t sessions) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a: stable across builds
  for (uint8_t b : a.bytes()) h = (h ^ b) * 1099511628211ull;
  size_t bit = h % (64 * rec->address_sketch.size());
  rec->address_sketch[bit / 64] |= uint64_t(1) << (bit % 64);
  for (auto& e : rec->addresses) {
    if (e.address == a) {
      e.sessions += sessions;
      return;
    }
  }
  if (rec->addresses.size() < kMaxSampledAddresses) {
    rec->addresses.push_back({a, sessions});
  }
}

void MergeName(std::vector<peer::NameCount>* list, std::string_view name,
               uint32_t count) {
  if (name.size() > peer::kMaxNameLength) {
    name = name.substr(0, peer::kMaxNameLength);
  }
  auto it =
      std::find_if(list->begin(), list->end(),
                   [&](const peer::NameCount& e) { return e.name == name; });
  if (it != list->end()) {
    peer::NameCount e = std::move(*it);
    e.count += count;
    list->erase(it);
    list->insert(list->begin(), std::move(e));
    return;
  }
  if (list->size() >= peer::kMaxNames) list->pop_back();
  list->insert(list->begin(), peer::NameCount{std::string(name), count});
}

namespace {
void MergeNames(std::vector<peer::NameCount>* list,
                const std::vector<peer::NameCount>& newer) {
  // newer is most-recent-first: insert from its oldest so that its first
  // entry ends up in front.
  for (auto it = newer.rbegin(); it != newer.rend(); ++it) {
    MergeName(list, it->name, it->count);
  }
}
}  // namespace

void MergeSession(SourceRecord* rec, const peer::SessionSummary& s) {
  if (rec->first_seen == 0 || s.start_wall < rec->first_seen) {
    rec->first_seen = s.start_wall;
  }
  rec->last_seen = std::max(rec->last_seen, s.end_wall);
  peer::Merge(rec, s);
  rec->sessions_with_mail += s.transactions > 0 ? 1 : 0;
  rec->transactions += s.transactions;
  rec->recipients += s.recipients;
  rec->bytes += s.bytes;
  rec->commands += s.commands;
  rec->tls_sessions += s.tls ? 1 : 0;
  rec->proxied_sessions += s.via_proxy ? 1 : 0;
  rec->auth_attempts += s.auth_attempts;
  rec->pipelining += s.pipelined_without_ehlo ? 1 : 0;
  rec->bare_cr += s.bare_cr;
  rec->unknown_commands += s.unknown_commands;
  rec->limits_hit += s.limits_hit;
  rec->tarpitted_sessions += s.tarpitted ? 1 : 0;
  rec->delay_seconds += s.delay_seconds;
  rec->replies_stuttered += s.replies_stuttered;
  rec->slow_reads += s.slow_reads;
  int reason = int(s.close_reason);
  if (reason >= 0 && reason < kNumCloseReasons) rec->close_reasons[reason]++;
  // A session's lists are in first-seen order; its later names are the more
  // recent ones.
  for (const auto& e : s.helo_names)
    MergeName(&rec->helo_names, e.name, e.count);
  for (const auto& e : s.mail_from_domains) {
    MergeName(&rec->mail_from_domains, e.name, e.count);
  }
  for (const auto& e : s.rcpt_domains) {
    MergeName(&rec->rcpt_domains, e.name, e.count);
  }
}

void MergeRecord(SourceRecord* rec, const SourceRecord& d) {
  if (rec->first_seen == 0 ||
      (d.first_seen != 0 && d.first_seen < rec->first_seen)) {
    rec->first_seen = d.first_seen;
  }
  rec->last_seen = std::max(rec->last_seen, d.last_seen);
  peer::Add(rec, d);
  rec->sessions_with_mail += d.sessions_with_mail;
  rec->transactions += d.transactions;
  rec->recipients += d.recipients;
  rec->bytes += d.bytes;
  rec->commands += d.commands;
  rec->tls_sessions += d.tls_sessions;
  rec->proxied_sessions += d.proxied_sessions;
  rec->auth_attempts += d.auth_attempts;
  rec->pipelining += d.pipelining;
  rec->bare_cr += d.bare_cr;
  rec->unknown_commands += d.unknown_commands;
  rec->limits_hit += d.limits_hit;
  rec->tarpitted_sessions += d.tarpitted_sessions;
  rec->delay_seconds += d.delay_seconds;
  rec->replies_stuttered += d.replies_stuttered;
  rec->slow_reads += d.slow_reads;
  for (int i = 0; i < kNumCloseReasons; ++i) {
    rec->close_reasons[i] += d.close_reasons[i];
  }
  MergeNames(&rec->helo_names, d.helo_names);
  MergeNames(&rec->mail_from_domains, d.mail_from_domains);
  MergeNames(&rec->rcpt_domains, d.rcpt_domains);
  // d's sample is in its own first-seen order, after rec's.
  for (const auto& e : d.addresses) {
    SampleAddress(rec, e.address, e.sessions);
  }
  for (size_t i = 0; i < rec->address_sketch.size(); ++i) {
    rec->address_sketch[i] |= d.address_sketch[i];
  }
}

const char* CloseReasonKey(int index) {
  return peer::CloseReasonName(peer::CloseReason(index));
}

int CloseReasonIndex(std::string_view name) {
  for (int i = 0; i < kNumCloseReasons; ++i) {
    if (name == CloseReasonKey(i)) return i;
  }
  return -1;
}

}  // namespace ledger
