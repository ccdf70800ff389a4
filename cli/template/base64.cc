// Base64 as Go's encoding/base64 StdEncoding and URLEncoding (padded) write and read it.
#include "cli/template/base64.h"

namespace strongroom::tmpl {

const char kBase64Std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64Encode(std::string_view in, const char* alphabet) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  auto b = [&](size_t k) { return static_cast<unsigned char>(in[k]); };
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = (b(i) << 16) | (b(i + 1) << 8) | b(i + 2);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (in.size() - i == 1) {
    const unsigned v = b(i) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (in.size() - i == 2) {
    const unsigned v = (b(i) << 16) | (b(i + 1) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// Go's base64 Encoding.DecodeString with padding: '\r' and '\n' are skipped; on bad input
// returns the offset Go reports ("illegal base64 data at input byte N").
bool Base64Decode(std::string_view in, const char* alphabet, std::string* out, size_t* bad) {
  int decode[256];
  for (int& d : decode) d = -1;
  for (int k = 0; k < 64; ++k) decode[static_cast<unsigned char>(alphabet[k])] = k;
  unsigned quantum[4];
  size_t j = 0;
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    if (c == '\r' || c == '\n') {
      ++i;
      continue;
    }
    if (c == '=') {
      // Padding: only in the last two positions of a quantum, then nothing but newlines.
      if (j < 2) {
        *bad = i;
        return false;
      }
      ++i;
      if (j == 2) {
        while (i < in.size() && (in[i] == '\r' || in[i] == '\n')) ++i;
        if (i >= in.size() || in[i] != '=') {
          *bad = i >= in.size() ? in.size() : i;
          return false;
        }
        ++i;
      }
      while (i < in.size() && (in[i] == '\r' || in[i] == '\n')) ++i;
      if (i < in.size()) {
        *bad = i;
        return false;
      }
      const unsigned v = (quantum[0] << 18) | (quantum[1] << 12) | (j == 3 ? quantum[2] << 6 : 0);
      out->push_back(static_cast<char>(v >> 16));
      if (j == 3) out->push_back(static_cast<char>((v >> 8) & 0xFF));
      return true;
    }
    const int d = decode[static_cast<unsigned char>(c)];
    if (d < 0) {
      *bad = i;
      return false;
    }
    quantum[j++] = static_cast<unsigned>(d);
    ++i;
    if (j == 4) {
      const unsigned v = (quantum[0] << 18) | (quantum[1] << 12) | (quantum[2] << 6) | quantum[3];
      out->push_back(static_cast<char>(v >> 16));
      out->push_back(static_cast<char>((v >> 8) & 0xFF));
      out->push_back(static_cast<char>(v & 0xFF));
      j = 0;
    }
  }
  if (j != 0) {
    *bad = in.size() - j;
    return false;
  }
  return true;
}

}  // namespace strongroom::tmpl
