// apps/rtb/money.h — money as integers: micro-USD (1e-6 USD), and the decimal CPM text of OpenRTB.
//
// Why: floats cannot hold 0.29 exactly, and budgets must add up to the cent after a billion bids.
// Every amount in apps/rtb is an int64 count of micro-units (a CPM of 2.5 USD is 2'500'000). JSON
// numbers are converted from their decimal text exactly, never through double.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mnv::rtb {

using Micros = std::int64_t;

inline constexpr Micros kMicrosPerUnit = 1'000'000;
// The largest CPM we read or write: 1,000,000 (a floor above that is a mistake or an attack).
inline constexpr Micros kMaxCpmMicros = 1'000'000 * kMicrosPerUnit;

// Parses a JSON number's text ("2", "0.29", "1.5e-1", "3E2") as a non-negative amount in
// micro-units, rounded up past the sixth decimal (a floor rounded up is still met by a price that
// meets it). False for negative numbers, non-numbers, and amounts above kMaxCpmMicros.
bool parse_decimal_micros(std::string_view text, Micros* out);

// Writes `micros` (0 to kMaxCpmMicros) as the shortest exact decimal ("2.5", "0.000001", "3") into
// out[0..cap); returns the length, or 0 when it does not fit. No allocation.
std::size_t format_decimal_micros(Micros micros, char* out, std::size_t cap);

// Converts `amount` micro-units of a currency worth `micros_per_unit` micro-USD each into
// micro-USD, rounded up. Both must be non-negative; saturates at kMaxCpmMicros.
Micros convert_micros(Micros amount, Micros micros_per_unit);

}  // namespace mnv::rtb
