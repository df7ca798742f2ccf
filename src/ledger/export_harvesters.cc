// Exports of the trap site's harvesters: their IPs fed to the exporters as
// address-only records.
#include "ledger/trap_ledger.h"

namespace ledger {

base::Status ExportHarvesters(TrapLedger* traps, ExportOptions options,
                              const Sink& sink) {
  auto ips = traps->HarvesterIps();
  if (!ips.ok()) return ips.status();
  std::vector<SourceRecord> records;
  records.reserve(ips->size());
  for (const auto& text : *ips) {
    // Stored from the listener's peer address; one that does not parse
    // (never expected) is left out rather than failing the whole list.
    auto ip = base::IpAddress::Parse(text);
    if (!ip.ok()) continue;
    SourceRecord r;
    r.ip = *ip;
    records.push_back(std::move(r));
  }
  options.record_v6_prefix = 128;
  return ExportStream(VectorScan(SortedByIp(std::move(records))), options,
                      sink);
}

}  // namespace ledger
