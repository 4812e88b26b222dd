// Status and Result<T>: how every v4agent module reports expected failures.
// Owns the error codes and the propagation macros. Must never throw or abort: a Status is a
// value, and a message names the file, line, tensor or field that caused it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "common/check.h"

namespace v4agent {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kOutOfRange,
  kFailedPrecondition,
  kPermissionDenied,
  kResourceExhausted,
  kDeadlineExceeded,
  kCancelled,
  kDataLoss,
  kIoError,
  kUnavailable,
  kUnimplemented,
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: message" or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "context: message" (same code). Used to add the file or
  // field name as an error travels up.
  Status WithContext(std::string_view context) const;
  // Drops the status on purpose: a best-effort step whose failure only costs a nicety.
  void IgnoreError() const {}

  bool operator==(const Status& other) const {
    return code_ == other.code_ && message_ == other.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgumentError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status OutOfRangeError(std::string message);
Status FailedPreconditionError(std::string message);
Status PermissionDeniedError(std::string message);
Status ResourceExhaustedError(std::string message);
Status DeadlineExceededError(std::string message);
Status CancelledError(std::string message);
Status DataLossError(std::string message);
Status IoError(std::string message);
Status UnavailableError(std::string message);
Status UnimplementedError(std::string message);
Status InternalError(std::string message);
// IoError whose message ends with ": strerror(err)".
Status ErrnoError(std::string message, int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  static_assert(!std::is_same_v<std::decay_t<T>, Status>, "Result<Status> is not allowed");

  Result(const T& value) : value_(value) {}             // NOLINT: implicit by design
  Result(T&& value) : value_(std::move(value)) {}       // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    V4_CHECK(!status_.ok()) << "Result constructed from an OK status without a value";
  }
  template <typename U, typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                                    !std::is_same_v<std::decay_t<U>, Status> &&
                                                    !std::is_same_v<std::decay_t<U>, T>>>
  Result(U&& value) : value_(std::forward<U>(value)) {}  // NOLINT: implicit by design

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  void IgnoreError() const {}  // see Status::IgnoreError

  T& value() & {
    V4_CHECK(ok()) << "Result::value() on error: " << status_.ToString();
    return *value_;
  }
  const T& value() const& {
    V4_CHECK(ok()) << "Result::value() on error: " << status_.ToString();
    return *value_;
  }
  T&& value() && {
    V4_CHECK(ok()) << "Result::value() on error: " << status_.ToString();
    return std::move(*value_);
  }
  T value_or(T other) const& { return ok() ? *value_ : std::move(other); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

namespace internal {
inline Status ToStatus(const Status& s) { return s; }
template <typename T>
Status ToStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace internal

}  // namespace v4agent

#define V4_STATUS_CONCAT_INNER(a, b) a##b
#define V4_STATUS_CONCAT(a, b) V4_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` (a Status or Result) is an error.
#define V4_RETURN_IF_ERROR(expr)                                                    \
  do {                                                                              \
    auto&& v4_status_tmp_ = (expr);                                                 \
    if (!v4_status_tmp_.ok()) return ::v4agent::internal::ToStatus(v4_status_tmp_); \
  } while (0)

// `V4_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result or returns its error.
#define V4_ASSIGN_OR_RETURN(lhs, expr) \
  V4_ASSIGN_OR_RETURN_IMPL(V4_STATUS_CONCAT(v4_result_, __LINE__), lhs, expr)
#define V4_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
