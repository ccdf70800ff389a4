#include "appliance/core/json_limits.h"

#include <algorithm>
#include <vector>

namespace strongroom::core {
namespace {

// What may come next. Where the input is not JSON the scan says kSyntax and leaves the naming of
// the error to the parser that runs next. It never refuses what that parser accepts (numbers
// are taken as any run of number characters, UTF-8 and \u escapes are left to it), so a body
// it calls kSyntax is one that parser refuses too, at that byte or before.
enum class Expect : uint8_t {
  kValue,         // a value (top level, after ':' or after ',' in an array)
  kValueOrClose,  // after '['
  kKeyOrClose,    // after '{'
  kKey,           // after ',' in an object
  kColon,         // after a key
  kCommaOrClose,  // after a value inside a container
  kEnd,           // after the top-level value: only blanks
};

struct Open {
  bool object;
  uint64_t count;  // entries or elements so far
};

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool IsNumberChar(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

class Scan {
 public:
  Scan(std::string_view text, const JsonLimits& limits) : s_(text), l_(limits) {
    open_.reserve(std::min<size_t>(l_.max_depth, 64));
  }

  JsonLimit Run() {
    SkipBlanks();
    if (i_ == s_.size()) return JsonLimit::kNone;
    for (;;) {
      SkipBlanks();
      if (i_ == s_.size()) return expect_ == Expect::kEnd ? JsonLimit::kNone : JsonLimit::kSyntax;
      const char c = s_[i_];
      JsonLimit r = JsonLimit::kNone;
      switch (expect_) {
        case Expect::kEnd:
          return JsonLimit::kSyntax;
        case Expect::kColon:
          if (c != ':') return JsonLimit::kSyntax;
          ++i_;
          expect_ = Expect::kValue;
          break;
        case Expect::kCommaOrClose:
          if (c == ',') {
            ++i_;
            expect_ = open_.back().object ? Expect::kKey : Expect::kValue;
          } else if (!Close(c)) {
            return JsonLimit::kSyntax;
          }
          break;
        case Expect::kKeyOrClose:
          if (Close(c)) break;
          [[fallthrough]];
        case Expect::kKey:
          r = Key();
          break;
        case Expect::kValueOrClose:
          if (Close(c)) break;
          [[fallthrough]];
        case Expect::kValue:
          r = Value();
          break;
      }
      if (r != JsonLimit::kNone) return r;
    }
  }

 private:
  void SkipBlanks() {
    while (i_ < s_.size() && IsBlank(s_[i_])) ++i_;
  }

  // Adds to the memory estimate; false once it is over the limit. (No overflow: the sum stays
  // at most max_memory plus one body's length.)
  bool Charge(uint64_t cost) {
    memory_ += cost;
    return memory_ <= l_.max_memory;
  }

  void AfterValue() { expect_ = open_.empty() ? Expect::kEnd : Expect::kCommaOrClose; }

  // `c` closes the innermost container: consumed.
  bool Close(char c) {
    if (open_.empty() || c != (open_.back().object ? '}' : ']')) return false;
    open_.pop_back();
    ++i_;
    AfterValue();
    return true;
  }

  // A string at s_[i_] (the opening quote): its raw length (escapes as written, as Vault counts
  // them) into *length, i_ past the closing quote.
  JsonLimit String(uint64_t* length) {
    size_t j = i_ + 1;
    uint64_t count = 0;
    for (;;) {
      if (j >= s_.size()) return JsonLimit::kSyntax;
      const auto c = static_cast<unsigned char>(s_[j]);
      if (c == '"') break;
      if (c < 0x20) return JsonLimit::kSyntax;
      if (c != '\\') {
        ++j;
        ++count;
      } else {
        if (j + 1 >= s_.size()) return JsonLimit::kSyntax;
        const char e = s_[j + 1];
        if (e == 'u') {
          if (j + 5 >= s_.size() || !IsHex(s_[j + 2]) || !IsHex(s_[j + 3]) || !IsHex(s_[j + 4]) ||
              !IsHex(s_[j + 5])) {
            return JsonLimit::kSyntax;
          }
          j += 6;
          count += 6;
        } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                   e == 'r' || e == 't') {
          j += 2;
          count += 2;
        } else {
          return JsonLimit::kSyntax;
        }
      }
      if (count > l_.max_string_length) return JsonLimit::kStringLength;
    }
    i_ = j + 1;
    *length = count;
    return JsonLimit::kNone;
  }

  // An object's key at s_[i_].
  JsonLimit Key() {
    if (s_[i_] != '"') return JsonLimit::kSyntax;
    uint64_t length = 0;
    if (JsonLimit r = String(&length); r != JsonLimit::kNone) return r;
    if (++open_.back().count > l_.max_object_entries) return JsonLimit::kObjectEntries;
    if (!Charge(kJsonEntryCost + length)) return JsonLimit::kMemory;
    if (++strings_ > l_.max_strings) return JsonLimit::kStrings;
    expect_ = Expect::kColon;
    return JsonLimit::kNone;
  }

  // A value at s_[i_].
  JsonLimit Value() {
    if (!open_.empty() && !open_.back().object && ++open_.back().count > l_.max_array_elements) {
      return JsonLimit::kArrayElements;
    }
    if (!Charge(kJsonValueCost)) return JsonLimit::kMemory;
    const char c = s_[i_];
    if (c == '{' || c == '[') {
      if (open_.size() >= l_.max_depth) return JsonLimit::kDepth;
      if (!Charge(kJsonContainerCost)) return JsonLimit::kMemory;
      open_.push_back(Open{c == '{', 0});
      ++i_;
      expect_ = c == '{' ? Expect::kKeyOrClose : Expect::kValueOrClose;
      return JsonLimit::kNone;
    }
    if (c == '"') {
      uint64_t length = 0;
      if (JsonLimit r = String(&length); r != JsonLimit::kNone) return r;
      if (!Charge(length)) return JsonLimit::kMemory;
      if (++strings_ > l_.max_strings) return JsonLimit::kStrings;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      uint64_t length = 0;
      while (i_ < s_.size() && IsNumberChar(s_[i_])) {
        ++i_;
        if (++length > l_.max_string_length) return JsonLimit::kNumberLength;
      }
    } else {
      std::string_view word = c == 't' ? "true" : c == 'f' ? "false" : c == 'n' ? "null" : "";
      if (word.empty() || s_.substr(i_, word.size()) != word) return JsonLimit::kSyntax;
      i_ += word.size();
    }
    AfterValue();
    return JsonLimit::kNone;
  }

  std::string_view s_;
  const JsonLimits& l_;
  size_t i_ = 0;
  Expect expect_ = Expect::kValue;
  std::vector<Open> open_;
  uint64_t memory_ = 0;
  uint64_t strings_ = 0;
};

}  // namespace

JsonLimit CheckJsonLimits(std::string_view text, const JsonLimits& limits) {
  return Scan(text, limits).Run();
}

std::string_view JsonLimitError(JsonLimit limit) {
  switch (limit) {
    case JsonLimit::kDepth:
      return "JSON input exceeds allowed nesting depth";
    case JsonLimit::kStringLength:
      return "JSON string value exceeds allowed length";
    case JsonLimit::kNumberLength:
      return "JSON number value exceeds allowed length";
    case JsonLimit::kObjectEntries:
      return "JSON object exceeds allowed entry count";
    case JsonLimit::kArrayElements:
      return "JSON array exceeds allowed element count";
    case JsonLimit::kMemory:
      return "refused JSON input due to high complexity: exceeded maximum estimated memory limits";
    case JsonLimit::kStrings:
      return "refused JSON input due to high complexity: exceeded maximum number of strings";
    case JsonLimit::kNone:
    case JsonLimit::kSyntax:
      break;
  }
  return "";
}

}  // namespace strongroom::core
