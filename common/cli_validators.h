// CLI11 validators shared by the programs' command lines.
//
// Their messages start with "must ...", so that a failure prints as
// "--max-batch must be an integer in [1, 4096], got '0'" (see cli_parse.h).
// The integer and byte-size ones are transformers: they rewrite the value as
// plain decimal, so CLI11's own conversion (which would read "010" as octal
// and "0x10" as hex) only ever sees decimal digits.
#ifndef RWKV_COMMON_CLI_VALIDATORS_H_
#define RWKV_COMMON_CLI_VALIDATORS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace rwkv::common {

// A decimal integer in [lo, hi].
CLI::Validator IntIn(int64_t lo, int64_t hi);
// A decimal integer in [0, 2^64 - 1] (seeds).
CLI::Validator Uint64();

// A finite number (no nan or inf) ...
CLI::Validator FiniteNumber();
// ... in [lo, hi],
CLI::Validator NumberIn(double lo, double hi);
// ... in (lo, hi],
CLI::Validator NumberAboveUpTo(double lo, double hi);
// ... >= lo,
CLI::Validator NumberAtLeast(double lo);
// ... > lo.
CLI::Validator NumberAbove(double lo);

// A byte count like 512M (common/byte_size.h), rewritten as decimal bytes.
CLI::Validator ByteSize();

// One of `values` (exact match). No help text of its own: give the option
// the list as its type_name ("text|json").
CLI::Validator OneOf(std::vector<std::string> values);

// Not the empty string.
CLI::Validator NonEmpty();

// "\n" (backslash, n) becomes a newline: for templates given on one line.
CLI::Validator UnescapeNewlines();
// The inverse, for showing such a default in --help.
std::string EscapeNewlines(const std::string& text);

}  // namespace rwkv::common

#endif  // RWKV_COMMON_CLI_VALIDATORS_H_
