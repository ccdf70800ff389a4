// Base64 as Go's encoding/base64 StdEncoding and URLEncoding (both padded) write and read it,
// for base64Encode/base64Decode and their URL forms.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace strongroom::tmpl {

extern const char kBase64Std[];  // A-Z a-z 0-9 + /
extern const char kBase64Url[];  // A-Z a-z 0-9 - _

std::string Base64Encode(std::string_view in, const char* alphabet);
// Decodes padded input, skipping '\r' and '\n' as Go does. On bad input returns false and sets
// *bad to the offset Go reports ("illegal base64 data at input byte N").
bool Base64Decode(std::string_view in, const char* alphabet, std::string* out, size_t* bad);

}  // namespace strongroom::tmpl
