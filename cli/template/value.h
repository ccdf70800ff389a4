// Values during execution and how Go prints them. A Value is a JSON value (borrowed from the
// data given to Execute, or owned by a function's result) or Go's invalid reflect.Value, which
// templates print as "<no value>" (a missing map key). JSON null is Go's nil interface.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace strongroom::tmpl {

namespace json = boost::json;

// Nesting of JSON values that printing, encoding and comparing walk (recursion bound).
inline constexpr int kMaxValueDepth = 128;

class Value {
 public:
  Value() = default;  // invalid: "no value"
  // `v` must outlive every use of the result (the data passed to Execute does).
  static Value Borrow(const json::value& v) {
    Value out;
    out.ptr_ = std::shared_ptr<const json::value>(std::shared_ptr<const json::value>(), &v);
    return out;
  }
  static Value Own(json::value v) {
    Value out;
    out.ptr_ = std::make_shared<const json::value>(std::move(v));
    return out;
  }
  // A value inside this one (an element or a field); shares ownership.
  Value Child(const json::value& sub) const {
    Value out;
    out.ptr_ = std::shared_ptr<const json::value>(ptr_, &sub);
    return out;
  }

  bool valid() const { return ptr_ != nullptr; }
  // Invalid or JSON null: what Go's indirectInterface turns into an invalid value.
  bool nil() const { return ptr_ == nullptr || ptr_->is_null(); }
  const json::value& get() const { return *ptr_; }

 private:
  std::shared_ptr<const json::value> ptr_;
};

// Go's name of the type encoding/json (with integers kept as integers) would give the value:
// string, int, uint64, float64, bool, []interface {}, map[string]interface {}, <nil>.
std::string GoTypeName(const Value& v);
std::string GoTypeName(const json::value& v);

// Go's truth: false, 0, "", empty array/object, null and no value are false.
bool IsTrue(const Value& v);

// Entries of an object in Go's map order (keys sorted bytewise).
std::vector<const json::key_value_pair*> SortedEntries(const json::object& o);

// Go's strconv.FormatFloat(f, 'g', -1, 64) as fmt's %v prints a float64.
std::string FormatShortestFloat(double f);

// Go's fmt.Sprint / Sprintln / Sprintf over values (invalid values are Go's nil). Output
// larger than `max_bytes` is an error, as is a value nested deeper than kMaxValueDepth.
absl::StatusOr<std::string> Sprint(std::span<const Value> args, size_t max_bytes);
absl::StatusOr<std::string> Sprintln(std::span<const Value> args, size_t max_bytes);
absl::StatusOr<std::string> Sprintf(std::string_view format, std::span<const Value> args,
                                    size_t max_bytes);

// What an action prints for its value: fmt.Print of the value, "<no value>" when invalid.
absl::StatusOr<std::string> PrintForAction(const Value& v, size_t max_bytes);

}  // namespace strongroom::tmpl
