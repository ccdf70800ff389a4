// SecureBytes: a byte buffer for key material. Pages are mmap'd, mlock'ed, excluded from core
// dumps (MADV_DONTDUMP) and zeroed before they are released. There is deliberately no stream
// operator and no conversion to std::string, so key bytes cannot end up in a log line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace strongroom {

class SecureBytes {
 public:
  SecureBytes() = default;
  explicit SecureBytes(size_t size);  // zero-filled
  SecureBytes(const uint8_t* data, size_t size);
  ~SecureBytes();

  SecureBytes(SecureBytes&& other) noexcept;
  SecureBytes& operator=(SecureBytes&& other) noexcept;
  SecureBytes(const SecureBytes&) = delete;
  SecureBytes& operator=(const SecureBytes&) = delete;

  SecureBytes Clone() const { return SecureBytes(data_, size_); }

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  std::span<uint8_t> span() { return {data_, size_}; }

  // Constant-time comparison.
  bool Equals(std::span<const uint8_t> other) const;

  // Zeroes the bytes and releases the pages.
  void Wipe();

  // True when the last allocation could be mlock'ed (false only where RLIMIT_MEMLOCK is too small).
  static bool LastLockSucceeded();

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
};

// Overwrites memory in a way the compiler may not elide.
void SecureZero(void* p, size_t n);

}  // namespace strongroom
