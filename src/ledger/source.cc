#include "ledger/source.h"

#include <algorithm>

namespace ledger {
namespace {

const std::vector<std::string_view> kEvidenceNames = {
    "early_talker",     "pipelining",      "bare_lf",    "bare_cr",
    "unknown_commands", "protocol_errors", "limits_hit", "auth_attempts"};

size_t NamesBytes(const std::vector<smtp::NameCount>& names) {
  size_t n = names.capacity() * sizeof(smtp::NameCount);
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
         NamesBytes(mail_from_domains) + NamesBytes(rcpt_domains);
}

void MergeName(std::vector<smtp::NameCount>* list, std::string_view name,
               uint32_t count) {
  if (name.size() > smtp::kMaxNameLength) {
    name = name.substr(0, smtp::kMaxNameLength);
  }
  auto it =
      std::find_if(list->begin(), list->end(),
                   [&](const smtp::NameCount& e) { return e.name == name; });
  if (it != list->end()) {
    smtp::NameCount e = std::move(*it);
    e.count += count;
    list->erase(it);
    list->insert(list->begin(), std::move(e));
    return;
  }
  if (list->size() >= smtp::kMaxNames) list->pop_back();
  list->insert(list->begin(), smtp::NameCount{std::string(name), count});
}

namespace {
void MergeNames(std::vector<smtp::NameCount>* list,
                const std::vector<smtp::NameCount>& newer) {
  // newer is most-recent-first: insert from its oldest so that its first
  // entry ends up in front.
  for (auto it = newer.rbegin(); it != newer.rend(); ++it) {
    MergeName(list, it->name, it->count);
  }
}
}  // namespace

void MergeSession(SourceRecord* rec, const smtp::SessionRecord& s) {
  if (rec->first_seen == 0 || s.start_wall < rec->first_seen) {
    rec->first_seen = s.start_wall;
  }
  rec->last_seen = std::max(rec->last_seen, s.end_wall);
  rec->connections += 1;
  rec->sessions_with_mail += s.transactions > 0 ? 1 : 0;
  rec->transactions += s.transactions;
  rec->messages += s.messages;
  rec->recipients += s.recipients;
  rec->bytes += s.bytes;
  rec->seconds_held += s.duration_seconds;
  rec->commands += s.commands;
  rec->tls_sessions += s.tls ? 1 : 0;
  rec->proxied_sessions += s.via_proxy ? 1 : 0;
  rec->auth_attempts += s.auth_attempts;
  rec->early_talker += s.early_talker ? 1 : 0;
  rec->pipelining += s.pipelined_without_ehlo ? 1 : 0;
  rec->bare_lf += s.bare_lf;
  rec->bare_cr += s.bare_cr;
  rec->unknown_commands += s.unknown_commands;
  rec->protocol_errors += s.protocol_errors;
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
  rec->connections += d.connections;
  rec->sessions_with_mail += d.sessions_with_mail;
  rec->transactions += d.transactions;
  rec->messages += d.messages;
  rec->recipients += d.recipients;
  rec->bytes += d.bytes;
  rec->seconds_held += d.seconds_held;
  rec->commands += d.commands;
  rec->tls_sessions += d.tls_sessions;
  rec->proxied_sessions += d.proxied_sessions;
  rec->auth_attempts += d.auth_attempts;
  rec->early_talker += d.early_talker;
  rec->pipelining += d.pipelining;
  rec->bare_lf += d.bare_lf;
  rec->bare_cr += d.bare_cr;
  rec->unknown_commands += d.unknown_commands;
  rec->protocol_errors += d.protocol_errors;
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
}

const char* CloseReasonKey(int index) {
  return smtp::CloseReasonName(smtp::CloseReason(index));
}

int CloseReasonIndex(std::string_view name) {
  for (int i = 0; i < kNumCloseReasons; ++i) {
    if (name == CloseReasonKey(i)) return i;
  }
  return -1;
}

}  // namespace ledger
