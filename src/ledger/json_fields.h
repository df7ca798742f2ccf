// The JSON text of a source record's list columns (names seen, close
// reasons), as the SQLite store keeps them. Parsing is lenient and bounded:
// a damaged column yields what can be read, never more than the caps.
#pragma once

#include <string>
#include <vector>

#include "ledger/source.h"

namespace ledger {

std::string NamesJson(const std::vector<peer::NameCount>& names);
std::vector<peer::NameCount> ParseNames(const unsigned char* text);
std::string ReasonsJson(const SourceRecord& r);
void ParseReasons(const unsigned char* text, SourceRecord* r);
// r.addresses and r.address_sketch: {"sample":[["2001:db8::1",3],...],
// "sketch":"<64 hex digits>"}, or "" when r samples nothing.
std::string AddressesJson(const SourceRecord& r);
void ParseAddresses(const unsigned char* text, SourceRecord* r);

}  // namespace ledger
