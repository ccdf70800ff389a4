// A small strict JSON parser and the canonical serializer that audit log hashes are computed
// over. Written here (rather than using a general JSON library) so that the verifier has no
// dependency but OpenSSL and so that numbers keep their exact spelling.
//
// Accepted input: RFC 8259 JSON, UTF-8 only, with these restrictions: duplicate object keys are
// rejected, nesting is limited to kMaxJsonDepth, strings must be well-formed UTF-8 and escapes may
// not encode lone surrogates (so every string is valid Unicode).
//
// Canonical form (the bytes that are hashed; see docs/audit-verification.md):
//   * no whitespace outside strings;
//   * object members sorted by key, comparing the keys' UTF-8 bytes as unsigned bytes (this is
//     Unicode code point order);
//   * strings written as UTF-8 with only these escapes: \" \\ \b \f \n \r \t, and \u00XX
//     (lowercase hex) for the other code points below U+0020; every other character, including
//     '/', U+007F and non-ASCII, is written as itself;
//   * numbers written exactly as they appear in the input (the lexeme is kept, never converted);
//   * true, false, null.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "audit/result.h"

namespace strongroom::audit {

inline constexpr int kMaxJsonDepth = 128;

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Member = std::pair<std::string, Json>;

  Json() = default;
  static Json Null() { return Json(); }
  static Json Bool(bool b);
  static Json String(std::string s);
  static Json Uint(uint64_t n);
  // `lexeme` must match the JSON number grammar; returns an error otherwise.
  static Result<Json> Number(std::string lexeme);
  static Json Array(std::vector<Json> items = {});
  static Json Object();

  Type type() const { return type_; }
  bool is_object() const { return type_ == Type::kObject; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_number() const { return type_ == Type::kNumber; }

  bool bool_value() const { return bool_; }
  // The string value, or the number's lexeme.
  const std::string& str() const { return str_; }
  const std::vector<Json>& items() const { return items_; }
  // Sorted by key (bytewise), keys unique.
  const std::vector<Member>& members() const { return members_; }

  // Object access; nullptr when absent (or when this is not an object).
  const Json* Find(std::string_view key) const;
  // Inserts or replaces; keeps members sorted. Only valid on objects.
  void Set(std::string key, Json value);
  // Returns whether the key was present. Only valid on objects.
  bool Erase(std::string_view key);
  // Arrays only.
  void Append(Json value) { items_.push_back(std::move(value)); }

  // A number that is a plain non-negative integer (no sign, fraction or exponent) fitting in
  // uint64; nullopt otherwise.
  std::optional<uint64_t> AsUint() const;

 private:
  friend class JsonParser;

  Type type_ = Type::kNull;
  bool bool_ = false;
  std::string str_;
  std::vector<Json> items_;
  std::vector<Member> members_;
};

// Parses exactly one JSON value; surrounding JSON whitespace is allowed. Errors name the byte
// offset.
Result<Json> ParseJson(std::string_view text);

// The canonical serialization described above.
std::string CanonicalJson(const Json& value);
void AppendCanonicalJson(const Json& value, std::string* out);
// A JSON string literal in canonical form, quotes included.
void AppendJsonString(std::string_view s, std::string* out);

}  // namespace strongroom::audit
