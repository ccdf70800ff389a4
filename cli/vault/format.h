// Output as the `vault` CLI prints it: tables (columnize with four spaces between columns,
// "n/a" for empty cells, a dashed line under the header), JSON (Go's json.MarshalIndent: two
// spaces, map keys sorted, <, > and & escaped), YAML (keys sorted, block style), and values as
// Go's %v prints them (maps as map[k:v], lists as [a b]). TTL-like keys print as durations
// ("768h", "1h30m").
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "appliance/core/json.h"
#include "client/client.h"

namespace strongroom::vault {

namespace json = boost::json;

enum class Format { kTable, kJson, kYaml };
absl::StatusOr<Format> ParseFormat(std::string_view name);

// Rows of cells separated by `delim`; the first row is the header.
std::string Table(const std::vector<std::string>& rows, std::string_view delim);
// Rows without a header line (columnOutput).
std::string Columns(const std::vector<std::string>& rows, std::string_view delim);
inline constexpr std::string_view kDelim = "\x1f";  // never in a value we print

// Go's %v of a JSON value.
std::string GoValue(const json::value& v);
// Vault's humanDuration of a number of seconds ("0s", "45s", "1m30s", "1h", "768h").
std::string HumanDuration(int64_t seconds);
// Keys whose values Vault prints as durations.
bool LooksLikeDuration(std::string_view key);
// A value for a table cell: durations for duration-like keys, else GoValue.
std::string CellValue(std::string_view key, const json::value& v);

// Which objects print in their insertion order (Go structs) rather than sorted (Go maps): the
// top one, and those of its fields named in `children`.
struct JsonOrder {
  bool top = false;
  std::vector<std::string_view> children;
};
std::string JsonIndent(const json::value& v, const JsonOrder& order = {});
// Written out as built, with a final newline.
void WriteJson(FILE* f, const json::value& v, const JsonOrder& order = {});
void WriteYaml(FILE* f, const json::value& v);
std::string Yaml(const json::value& v);

// Control characters other than newline and tab, as \xNN (C1 ones as \u00NN): what a table
// shows of a server's value cannot move the cursor, retitle the terminal or set the clipboard.
std::string EscapeControls(std::string_view s);

// The response in api.Secret's field order (request_id, lease_id, lease_duration, renewable,
// data, warnings, auth, mount_type).
json::value SecretValue(const client::Secret& s);
inline JsonOrder SecretOrder() { return JsonOrder{true, {"auth", "wrap_info"}}; }

// Go's time.Time.String() of an RFC 3339 time ("2026-12-07 12:54:52.5 +0000 UTC"); the text
// as is when it is not RFC 3339.
std::string GoTimeString(std::string_view rfc3339);

// OutputSecret's table: lease rows, token rows, wrapping rows (wrapping_token: ...), then the
// data keys sorted.
std::string SecretTable(const client::Secret& s);
// OutputData's table for a map ("Key Value" rows).
std::string MapTable(const json::object& data);
// Warnings as Vault prints them before a table (to stderr).
std::string WarningsText(const std::vector<std::string>& warnings);

// Reading fields of a server's answer, whatever their types.
const json::object& ObjectOr(const json::value& v);  // v, or an empty object
// o[k] as an object (empty when absent or not an object); a reference into `o`.
const json::object& Member(const json::object& o, std::string_view k);
// o[k] as text: a string as is, another value as GoValue, "" when absent or null.
std::string Str(const json::object& o, std::string_view k);
bool Bool(const json::object& o, std::string_view k);  // false unless a JSON true

// Vault's padEqualSigns ("== Secret Path ==", "======= Metadata =======").
std::string PadEqualSigns(std::string_view header, size_t total);
std::string HeaderForMap(std::string_view header, const json::object& data);

}  // namespace strongroom::vault
