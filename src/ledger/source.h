// What the ledger knows about one client IP: the sum of every session it
// opened. A SourceRecord is also the unit of a batch: the writer merges
// deltas (records built from a few sessions) into stored records.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/ip.h"
#include "peer/history.h"

namespace ledger {

using peer::kNumCloseReasons;

// Evidence flags, usable as filters (?evidence=early_talker,bare_lf).
enum class Evidence : uint32_t {
  kEarlyTalker = 1u << 0,
  kPipelining = 1u << 1,  // pipelined before PIPELINING was offered
  kBareLf = 1u << 2,
  kBareCr = 1u << 3,
  kUnknownCommands = 1u << 4,
  kProtocolErrors = 1u << 5,
  kLimitsHit = 1u << 6,
  kAuthAttempts = 1u << 7,
};
// Parses one flag name ("early_talker", "pipelining", "bare_lf", "bare_cr",
// "unknown_commands", "protocol_errors", "limits_hit", "auth_attempts").
bool ParseEvidence(std::string_view name, Evidence* out);
// All flag names, in bit order.
const std::vector<std::string_view>& EvidenceNames();

// One full address seen inside a record that stands for an IPv6 network.
struct AddressCount {
  base::IpAddress address;
  uint64_t sessions = 0;
  bool operator==(const AddressCount&) const = default;
};
// How many full addresses a network's record keeps (the first seen).
inline constexpr size_t kMaxSampledAddresses = 8;
// 256 bits of a linear-counting sketch of the distinct addresses: bit
// FNV-1a(address) % 256 is set for each address; merges by OR, so batches
// and sinks combine exactly. Estimates up to ~1,400 distinct addresses.
using AddressSketch = std::array<uint64_t, 4>;

// The History part (connections, messages, early_talker, bare_lf,
// protocol_errors, seconds_held) is what the tarpit's reputation reads.
struct SourceRecord : peer::History {
  base::IpAddress ip;
  double first_seen = 0;            // Unix seconds (session start)
  double last_seen = 0;             // Unix seconds (session end)
  uint64_t sessions_with_mail = 0;  // sessions with a MAIL accepted
  uint64_t transactions = 0;
  uint64_t recipients = 0;
  uint64_t bytes = 0;
  uint64_t commands = 0;
  uint64_t tls_sessions = 0;
  uint64_t proxied_sessions = 0;  // address came from a PROXY header
  uint64_t auth_attempts = 0;
  // Evidence counters.
  uint64_t pipelining = 0;  // sessions
  uint64_t bare_cr = 0;
  uint64_t unknown_commands = 0;
  uint64_t limits_hit = 0;
  // Tarpit accounting.
  uint64_t tarpitted_sessions = 0;  // sessions the tarpit held
  double delay_seconds = 0;         // waits imposed before replies
  uint64_t replies_stuttered = 0;   // replies sent a few bytes at a time
  uint64_t slow_reads = 0;          // DATA reads throttled by the slow reader
  std::array<uint64_t, kNumCloseReasons> close_reasons{};
  // Most recent distinct names first, at most peer::kMaxNames each.
  std::vector<peer::NameCount> helo_names;
  std::vector<peer::NameCount> mail_from_domains;
  std::vector<peer::NameCount> rcpt_domains;
  // Only for a record that stands for an IPv6 network (ledger.ipv6_prefix
  // < 128): the first kMaxSampledAddresses distinct full addresses seen in
  // it with their sessions, and the sketch of all of them. Empty otherwise.
  std::vector<AddressCount> addresses;
  AddressSketch address_sketch{};

  // The number of distinct full addresses seen: exact while the sample is
  // not full (it then holds them all), else the sketch's estimate (at least
  // the sample's size). 0 for a record that does not sample.
  uint64_t DistinctAddresses() const;
  // The Evidence bits whose counters are non-zero.
  uint32_t EvidenceMask() const;
  // Rough heap + inline footprint, for the pending-memory bound.
  size_t ApproxBytes() const;

  bool operator==(const SourceRecord&) const = default;
};

// Adds one ended session to rec (rec.ip must already be session.client).
void MergeSession(SourceRecord* rec, const peer::SessionSummary& session);
// Adds a delta (same ip) to rec: counters add, first_seen takes the min,
// last_seen the max, name lists merge with delta's names treated as newer.
void MergeRecord(SourceRecord* rec, const SourceRecord& delta);
// Adds count sightings of name to list: moves it to the front (most recent),
// keeps at most peer::kMaxNames entries (the oldest fall off).
void MergeName(std::vector<peer::NameCount>* list, std::string_view name,
               uint32_t count);

// Notes sessions from the full address a inside rec's network: counted in
// the sample if there (or while it has room) and in the sketch always.
void SampleAddress(SourceRecord* rec, const base::IpAddress& a,
                   uint64_t sessions);

// Stable name of a close reason index (peer::CloseReasonName), and back.
const char* CloseReasonKey(int index);
int CloseReasonIndex(std::string_view name);  // -1 if unknown

// The key a source is filed under: ip itself for IPv4, its network of
// ipv6_prefix bits for IPv6 (128: the address itself).
base::IpAddress SourceKey(const base::IpAddress& ip, int ipv6_prefix);

}  // namespace ledger
