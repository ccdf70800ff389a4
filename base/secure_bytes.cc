#include "base/secure_bytes.h"

#include <openssl/crypto.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <new>
#include <utility>

namespace strongroom {
namespace {

std::atomic<bool> g_last_lock_ok{true};

size_t PageRound(size_t n) {
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

}  // namespace

void SecureZero(void* p, size_t n) {
  if (p != nullptr && n > 0) OPENSSL_cleanse(p, n);
}

SecureBytes::SecureBytes(size_t size) : size_(size) {
  if (size == 0) return;
  mapped_ = PageRound(size);
  void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  madvise(p, mapped_, MADV_DONTDUMP);
  madvise(p, mapped_, MADV_DONTFORK);
  g_last_lock_ok.store(mlock(p, mapped_) == 0);
  data_ = static_cast<uint8_t*>(p);  // mmap'd anonymous memory is already zero
}

SecureBytes::SecureBytes(const uint8_t* data, size_t size) : SecureBytes(size) {
  if (size > 0) std::memcpy(data_, data, size);
}

SecureBytes::~SecureBytes() { Wipe(); }

SecureBytes::SecureBytes(SecureBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

SecureBytes& SecureBytes::operator=(SecureBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

bool SecureBytes::Equals(std::span<const uint8_t> other) const {
  if (other.size() != size_) return false;
  if (size_ == 0) return true;
  return CRYPTO_memcmp(data_, other.data(), size_) == 0;
}

void SecureBytes::Wipe() {
  if (data_ == nullptr) return;
  SecureZero(data_, mapped_);
  munlock(data_, mapped_);
  munmap(data_, mapped_);
  data_ = nullptr;
  size_ = 0;
  mapped_ = 0;
}

bool SecureBytes::LastLockSucceeded() { return g_last_lock_ok.load(); }

}  // namespace strongroom
