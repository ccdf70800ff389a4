// Error handling for the audit verifier library. The verifier deliberately depends on nothing of
// ours and nothing but OpenSSL, so instead of absl::Status it uses this small pair: Status (ok or
// a message) and Result<T> (a value or a message). Messages are for auditors: they say what is
// wrong with the input, never anything secret (the library handles no secrets but signing keys in
// tests).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace strongroom::audit {

struct Error {
  std::string message;
};

inline Error Err(std::string message) { return Error{std::move(message)}; }

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : error_(std::move(e.message)), ok_(false) {}  // NOLINT: implicit on purpose

  bool ok() const { return ok_; }
  const std::string& message() const { return error_; }

 private:
  std::string error_;
  bool ok_ = true;
};

inline Status OkStatus() { return Status(); }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Error e) : v_(std::move(e)) {}      // NOLINT: implicit on purpose

  bool ok() const { return v_.index() == 0; }
  const std::string& message() const { return std::get<1>(v_).message; }
  Status status() const { return ok() ? Status() : Status(std::get<1>(v_)); }

  const T& value() const& { return std::get<0>(v_); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace strongroom::audit

#define SR_AUDIT_CONCAT_INNER(a, b) a##b
#define SR_AUDIT_CONCAT(a, b) SR_AUDIT_CONCAT_INNER(a, b)

// Returns the error of a Status or Result expression from the enclosing function.
#define AUDIT_RETURN_IF_ERROR(expr)                                             \
  do {                                                                          \
    auto sr_audit_status_ = (expr);                                             \
    if (!sr_audit_status_.ok())                                                 \
      return ::strongroom::audit::Err(std::string(sr_audit_status_.message())); \
  } while (0)

#define AUDIT_ASSIGN_OR_RETURN(lhs, expr) \
  AUDIT_ASSIGN_OR_RETURN_IMPL(SR_AUDIT_CONCAT(sr_audit_result_, __LINE__), lhs, expr)

#define AUDIT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)                           \
  auto tmp = (expr);                                                          \
  if (!tmp.ok()) return ::strongroom::audit::Err(std::string(tmp.message())); \
  lhs = std::move(tmp).value()
