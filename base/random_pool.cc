#include "base/random_pool.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <cstring>

#include "base/fork_generation.h"

namespace strongroom {

absl::Status PooledRandomBytes(uint8_t* out, size_t n) {
  if (n > kMaxPooledDraw) return absl::InvalidArgumentError("pooled random draw is too large");
  struct Pool {
    std::array<uint8_t, kRandomPoolBytes> bytes{};
    size_t next = kRandomPoolBytes;  // empty: the first call draws
    uint64_t fork_generation = 0;
  };
  thread_local Pool pool;
  const uint64_t generation = ForkGeneration();
  if (pool.bytes.size() - pool.next < n || pool.fork_generation != generation) {
    pool.next = pool.bytes.size();  // stays empty if the draw fails
    if (RAND_bytes(pool.bytes.data(), static_cast<int>(pool.bytes.size())) != 1) {
      return absl::InternalError("random generator failed");
    }
    pool.next = 0;
    pool.fork_generation = generation;
  }
  std::memcpy(out, pool.bytes.data() + pool.next, n);
  OPENSSL_cleanse(pool.bytes.data() + pool.next, n);  // handed out: not kept
  pool.next += n;
  return absl::OkStatus();
}

}  // namespace strongroom
