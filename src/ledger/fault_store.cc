#include "ledger/store.h"

namespace ledger {

void FaultStore::FailWrites(int n, std::string message) {
  std::lock_guard lock(mu_);
  fail_writes_ = n;
  message_ = std::move(message);
}

void FaultStore::FailReads(bool fail) {
  std::lock_guard lock(mu_);
  fail_reads_ = fail;
}

int FaultStore::write_calls() const {
  std::lock_guard lock(mu_);
  return write_calls_;
}

int FaultStore::failed_writes() const {
  std::lock_guard lock(mu_);
  return failed_writes_;
}

base::Status FaultStore::NextWrite() {
  std::lock_guard lock(mu_);
  write_calls_++;
  if (fail_writes_ == 0) return {};
  if (fail_writes_ > 0) fail_writes_--;
  failed_writes_++;
  return base::Status::Error(message_);
}

base::Status FaultStore::Apply(const std::vector<SourceRecord>& deltas) {
  if (auto s = NextWrite(); !s.ok()) return s;
  return base_->Apply(deltas);
}

base::Result<uint64_t> FaultStore::Expire(double cutoff) {
  if (auto s = NextWrite(); !s.ok()) return s;
  return base_->Expire(cutoff);
}

#define SPAMSINK_FAULT_READ()                                      \
  do {                                                             \
    std::lock_guard lock(mu_);                                     \
    if (fail_reads_) return base::Status::Error("injected fault"); \
  } while (0)

base::Result<std::optional<SourceRecord>> FaultStore::Get(
    const base::IpAddress& ip) {
  SPAMSINK_FAULT_READ();
  return base_->Get(ip);
}

base::Result<SourcePage> FaultStore::Query(const SourceQuery& q) {
  SPAMSINK_FAULT_READ();
  return base_->Query(q);
}

base::Status FaultStore::Scan(const SourceQuery& q, const Visitor& each) {
  SPAMSINK_FAULT_READ();
  return base_->Scan(q, each);
}

base::Result<Totals> FaultStore::GetTotals() {
  SPAMSINK_FAULT_READ();
  return base_->GetTotals();
}

}  // namespace ledger
