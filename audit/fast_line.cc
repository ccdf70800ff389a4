#include "audit/fast_line.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "audit/chain.h"

namespace strongroom::audit {

namespace {

// Containers nested deeper than this go to the full parser (which allows kMaxJsonDepth).
constexpr int kFastMaxDepth = 64;

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

// Whether any byte of `w` is zero / below `n` (n <= 128): exact as "any", the usual bit trick.
inline uint64_t HasZero(uint64_t w) { return (w - kOnes) & ~w & kHighs; }
inline uint64_t HasLess(uint64_t w, uint64_t n) { return (w - kOnes * n) & ~w & kHighs; }

// The first byte at or after p that a string scan must look at: '"', '\\', a control
// character or a non-ASCII byte. Strings are most of a line's bytes, so 16 (SSE2, every x86-64)
// or 8 at a time.
inline const unsigned char* SkipPlain(const unsigned char* p, const unsigned char* end) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // Signed: bytes 0x80-0xff are negative, so "less than 0x20" catches them and the controls.
    const __m128i special =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                     _mm_cmplt_epi8(v, space));
    const int mask = _mm_movemask_epi8(special);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (end - p >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    if ((HasZero(w ^ (kOnes * '"')) | HasZero(w ^ (kOnes * '\\')) | HasLess(w, 0x20) |
         (w & kHighs)) != 0) {
      break;
    }
    p += 8;
  }
  while (p != end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') ++p;
  return p;
}

inline bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
inline bool IsLowerHex(unsigned char c) { return IsDigit(c) || (c >= 'a' && c <= 'f'); }

struct Span {
  const unsigned char* begin = nullptr;
  const unsigned char* end = nullptr;
  size_t size() const { return static_cast<size_t>(end - begin); }
  std::string_view view() const {
    return std::string_view(reinterpret_cast<const char*>(begin), size());
  }
};

// Bytewise (unsigned) order, a prefix first: std::string's order. Keys are short and usually
// differ early, so a loop beats a call to memcmp.
inline bool Less(Span a, Span b) {
  const size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) {
    if (a.begin[i] != b.begin[i]) return a.begin[i] < b.begin[i];
  }
  return a.size() < b.size();
}

// A single pass over canonical JSON (json.h). Every method returns false on anything that is
// not certainly canonical; `p_` is then meaningless.
class Scanner {
 public:
  Scanner(const unsigned char* p, const unsigned char* end) : p_(p), end_(end) {}

  const unsigned char* pos() const { return p_; }
  bool AtEnd() const { return p_ == end_; }
  bool Consume(unsigned char c) {
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  bool Peek(unsigned char c) const { return p_ != end_ && *p_ == c; }

  // A string at p_ (which must be '"'); *contents is what is between the quotes (raw, escapes
  // included), *escaped whether there is any escape.
  bool String(Span* contents, bool* escaped) {
    if (!Consume('"')) return false;
    contents->begin = p_;
    *escaped = false;
    while (true) {
      p_ = SkipPlain(p_, end_);
      if (p_ == end_) return false;
      const unsigned char c = *p_;
      if (c == '"') {
        contents->end = p_++;
        return true;
      }
      if (c == '\\') {
        *escaped = true;
        if (!Escape()) return false;
        continue;
      }
      if (c < 0x20) return false;  // raw control character
      if (c < 0x80) {
        ++p_;
        continue;
      }
      if (!Utf8()) return false;
    }
  }

  bool Value(int depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        return Object(depth + 1);
      case '[':
        return Array(depth + 1);
      case '"': {
        Span s;
        bool escaped = false;
        return String(&s, &escaped);
      }
      case 't':
        return Literal("true", 4);
      case 'f':
        return Literal("false", 5);
      case 'n':
        return Literal("null", 4);
      default:
        return Number();
    }
  }

  // An object's key: no escapes (their order is that of the decoded bytes; left to the full
  // parser), strictly after `prev` (sorted, no duplicates).
  bool Key(Span prev, bool first, Span* key) {
    bool escaped = false;
    if (!String(key, &escaped) || escaped) return false;
    if (!first && !Less(prev, *key)) return false;
    return Consume(':');
  }

  bool Number() {
    const unsigned char* start = p_;
    if (Peek('-')) ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ != end_ && IsDigit(*p_)) ++p_;
    } else {
      return false;
    }
    if (Peek('.')) {
      ++p_;
      if (p_ == end_ || !IsDigit(*p_)) return false;
      while (p_ != end_ && IsDigit(*p_)) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !IsDigit(*p_)) return false;
      while (p_ != end_ && IsDigit(*p_)) ++p_;
    }
    return p_ != start;
  }

 private:
  bool Object(int depth) {
    if (depth > kFastMaxDepth) return false;
    ++p_;  // '{'
    if (Consume('}')) return true;
    Span prev;
    for (bool first = true;; first = false) {
      Span key;
      if (!Key(prev, first, &key) || !Value(depth)) return false;
      prev = key;
      if (Consume(',')) continue;
      return Consume('}');
    }
  }

  bool Array(int depth) {
    if (depth > kFastMaxDepth) return false;
    ++p_;  // '['
    if (Consume(']')) return true;
    while (true) {
      if (!Value(depth)) return false;
      if (Consume(',')) continue;
      return Consume(']');
    }
  }

  bool Literal(const char* word, size_t n) {
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
    p_ += n;
    return true;
  }

  // The escapes canonical form writes: \" \\ \b \f \n \r \t, and \u00xx (lowercase) for the
  // other characters below U+0020.
  bool Escape() {
    if (end_ - p_ < 2) return false;
    const unsigned char e = p_[1];
    switch (e) {
      case '"':
      case '\\':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        p_ += 2;
        return true;
      case 'u': {
        if (end_ - p_ < 6 || p_[2] != '0' || p_[3] != '0') return false;
        const unsigned char h = p_[4];
        const unsigned char l = p_[5];
        if ((h != '0' && h != '1') || !IsLowerHex(l)) return false;
        const int v = (h - '0') * 16 + (IsDigit(l) ? l - '0' : l - 'a' + 10);
        if (v == '\b' || v == '\f' || v == '\n' || v == '\r' || v == '\t') return false;
        p_ += 6;
        return true;
      }
      default:
        return false;
    }
  }

  // One well-formed UTF-8 sequence of 2-4 bytes, as IsValidUtf8 accepts.
  bool Utf8() {
    const size_t n = Utf8SequenceLength(
        std::string_view(reinterpret_cast<const char*>(p_), static_cast<size_t>(end_ - p_)));
    p_ += n;
    return n != 0;
  }

  const unsigned char* p_;
  const unsigned char* end_;
};

bool Equals(Span s, std::string_view want) {
  return s.size() == want.size() && std::memcmp(s.begin, want.data(), want.size()) == 0;
}

// A string value of 64 lowercase hex digits.
bool HexHash(Span value, Hash* out) {
  if (value.size() != 66 || value.begin[0] != '"' || value.begin[65] != '"') return false;
  std::optional<Hash> h =
      HashFromHex(std::string_view(reinterpret_cast<const char*>(value.begin + 1), 64));
  if (!h) return false;
  *out = *h;
  return true;
}

// A string value without escapes, not empty; *contents without the quotes.
bool PlainString(Span value, Span* contents) {
  if (value.size() < 3 || value.begin[0] != '"') return false;
  contents->begin = value.begin + 1;
  contents->end = value.end - 1;
  return std::memchr(contents->begin, '\\', contents->size()) == nullptr;
}

}  // namespace

bool FastLineChecker::Check(std::string_view line, FastLine* out) {
  if (line.empty() || line.size() > kMaxLineBytes) return false;
  const auto* begin = reinterpret_cast<const unsigned char*>(line.data());
  Scanner s(begin, begin + line.size());
  if (!s.Consume('{') || s.Peek('}')) return false;
  // The top-level members the chain needs: spans of whole members (key to end of value).
  Span hash_member, hash_value, prev_value, seq_value, type_value, time_value, mac_value;
  int members = 0;
  Span prev_key;
  for (bool first = true;; first = false) {
    const unsigned char* member_start = s.pos();
    Span key;
    if (!s.Key(prev_key, first, &key)) return false;
    const unsigned char* value_start = s.pos();
    if (!s.Value(1)) return false;
    const Span value{value_start, s.pos()};
    ++members;
    prev_key = key;
    switch (key.size()) {
      case 3:
        if (Equals(key, "seq")) seq_value = value;
        if (Equals(key, "mac")) mac_value = value;
        break;
      case 4:
        if (Equals(key, "hash")) hash_member = {member_start, s.pos()}, hash_value = value;
        if (Equals(key, "type")) type_value = value;
        if (Equals(key, "time")) time_value = value;
        break;
      case 9:
        if (Equals(key, "prev_hash")) prev_value = value;
        break;
      default:
        break;
    }
    if (s.Consume(',')) continue;
    if (!s.Consume('}')) return false;
    break;
  }
  if (!s.AtEnd()) return false;

  // seq: a plain decimal integer other than 0.
  if (seq_value.begin == nullptr || !IsDigit(seq_value.begin[0])) return false;
  std::optional<uint64_t> seq = ParseDecimalU64(seq_value.view());
  if (!seq || *seq == 0) return false;
  if (hash_value.begin == nullptr || !HexHash(hash_value, &out->hash)) return false;
  if (prev_value.begin == nullptr || !HexHash(prev_value, &out->prev_hash)) return false;
  Span type, time;
  if (type_value.begin == nullptr || !PlainString(type_value, &type)) return false;
  if (time_value.begin == nullptr || !PlainString(time_value, &time)) return false;
  out->is_mac = Equals(type, kMacType);
  if (out->is_mac) {
    Hash mac;
    if (members != 6 || mac_value.begin == nullptr || !HexHash(mac_value, &mac)) return false;
  } else if (Equals(type, kCheckpointType) || Equals(type, kUnprovenType)) {
    return false;  // rare lines with more to check: the full parser
  }
  out->seq = *seq;
  out->time = time.view();

  // C is the line without its "hash" member and one comma next to it.
  const auto* line_end = begin + line.size();
  Span before{begin, hash_member.begin};
  Span after{hash_member.end, line_end};
  if (*after.begin == ',') {
    ++after.begin;  // "hash" first: drop the comma after it
  } else {
    --before.end;  // drop the comma before it
  }
  chain_.Update(AsBytes(out->prev_hash));
  chain_.Update(before.view());
  chain_.Update(after.view());
  if (chain_.Final() != out->hash) return false;
  if (!out->is_mac) {
    static constexpr char kLeafPrefix[1] = {0x00};
    leaf_.Update(std::string_view(kLeafPrefix, 1));
    leaf_.Update(before.view());
    leaf_.Update(after.view());
    out->leaf = leaf_.Final();
  }
  return true;
}

}  // namespace strongroom::audit
