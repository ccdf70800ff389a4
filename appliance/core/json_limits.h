// Limits on a JSON request body, checked by one cheap pass over its bytes before anything parses
// it into values (Vault's listener limits of CVE-2025-6203 / HCSEC-2025-24, and OpenBao's
// max_request_json_memory / max_request_json_strings). The scan keeps one small record per open
// container (at most max_depth of them) and never recurses, so its cost is a loop over the body.
// The worker runs it on every body before parsing; the broker runs it again on every request
// it receives (a compromised worker is hostile too).
#pragma once

#include <cstdint>
#include <string_view>

namespace strongroom::core {

struct JsonLimits {
  // Vault's max_json_depth (Vault's default is 500; strongroom's is 64, its long-standing limit).
  uint32_t max_depth = 64;
  // Vault's max_json_string_value_length: bytes between the quotes of one string, key or value,
  // escapes counted as written (and the length of one number).
  uint64_t max_string_length = 1024 * 1024;
  // Vault's max_json_object_entry_count and max_json_array_element_count (per container).
  uint64_t max_object_entries = 10000;
  uint64_t max_array_elements = 10000;
  // OpenBao's max_request_json_memory: what the parsed values would take (EstimatedCost below).
  uint64_t max_memory = 32 * 1024 * 1024 + 512 * 1024;
  // OpenBao's max_request_json_strings: strings, keys and values. (OpenBao's default is 1000;
  // strongroom's lets a Transit batch of 10,000 items with a few fields each through.)
  uint64_t max_strings = 100000;
};

enum class JsonLimit {
  kNone,    // within every limit
  kSyntax,  // not JSON (the parser that runs next names the error)
  kDepth,   // Vault's texts and status (500) for these five
  kStringLength,
  kNumberLength,
  kObjectEntries,
  kArrayElements,
  kMemory,  // OpenBao's texts and status (400) for these two
  kStrings,
};

// The estimate behind max_memory, in bytes: every value (array element, object value, the
// top-level value) costs a parsed value's size (24 bytes with Boost.JSON), a string value adds
// its length, a container adds its table header (16), an object entry adds a key's bookkeeping
// (24) and the key's length. Within a factor of two of what Boost.JSON allocates.
inline constexpr uint64_t kJsonValueCost = 24;
inline constexpr uint64_t kJsonContainerCost = 16;
inline constexpr uint64_t kJsonEntryCost = 24;

// The first limit `text` exceeds, in the order the bytes come (as Vault's streaming check does),
// or kSyntax at the first byte that cannot be JSON, or kNone. Empty (or all-blank) text is
// kNone. Every limit is checked before the work it bounds; the scan stops at the first refusal.
JsonLimit CheckJsonLimits(std::string_view text, const JsonLimits& limits);

// The error text answered for a refused body: Vault's for kDepth..kArrayElements ("JSON input
// exceeds allowed nesting depth", ...), OpenBao's for kMemory and kStrings ("refused JSON input
// due to high complexity: exceeded maximum ..."); empty for kNone and kSyntax.
std::string_view JsonLimitError(JsonLimit limit);

}  // namespace strongroom::core
