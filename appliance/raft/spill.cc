#include "appliance/raft/spill.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "appliance/raft/libraft.h"
#include "base/log.h"

namespace strongroom::raft {
namespace {

constexpr size_t kDefaultThreshold = 16u << 20;

struct State {
  std::mutex mu;
  std::string dir;
  std::map<const void*, size_t> blocks;  // mapped block -> its length
  // How many blocks are mapped now, read without the lock: libraft frees through HeapFree on
  // every message, and with no block mapped (nearly always) that needs no lookup at all. A
  // mapped pointer was counted here before SpillAlloc returned it.
  std::atomic<uint64_t> live{0};
  SpillStats stats;
  // Blocks freed but not yet unmapped: the unmapping (and the kernel dropping the file's dirty
  // pages with it, hundreds of milliseconds for a large one) runs on a thread of its own, never
  // on the Raft loop that frees them.
  std::condition_variable reap_cv;
  std::vector<std::pair<void*, size_t>> to_unmap;
  bool reaper_started = false;
};

State& S() {
  static State* s = new State;  // never destroyed: libraft may free after static destruction
  return *s;
}

size_t ThresholdFromEnv() {
  const char* v = std::getenv("STRONGROOM_RAFT_SPILL_BYTES");
  uint64_t n = 0;
  if (v != nullptr && absl::SimpleAtoi(v, &n)) {
    if (n == 0) return SIZE_MAX;  // off: everything stays in memory
    if (n >= 4096) return static_cast<size_t>(n);
  }
  return kDefaultThreshold;
}

// --- libraft's heap ---------------------------------------------------------------------------

// A large libraft buffer (a snapshot loaded to be sent, or received): file-backed when it can be.
void* SpillLarge(size_t size) {
  void* p = SpillAlloc(size);
  if (p != nullptr) LogInfo("raft: a %d-byte Raft buffer is file-backed", size);
  return p;
}

void* HeapMalloc(void* /*data*/, size_t size) {
  if (size >= SpillThreshold()) {
    if (void* p = SpillLarge(size)) return p;
  }
  return std::malloc(size);
}

void HeapFree(void* /*data*/, void* ptr) {
  if (ptr == nullptr || SpillFree(ptr)) return;
  std::free(ptr);
}

void* HeapCalloc(void* /*data*/, size_t nmemb, size_t size) {
  if (size != 0 && nmemb > SIZE_MAX / size) return nullptr;
  if (nmemb * size >= SpillThreshold()) {
    if (void* p = SpillLarge(nmemb * size)) return p;  // zeroed
  }
  return std::calloc(nmemb, size);
}

void* HeapRealloc(void* /*data*/, void* ptr, size_t size) {
  const size_t spilled = SpillSize(ptr);
  if (spilled == 0 && size < SpillThreshold()) return std::realloc(ptr, size);
  if (size == 0) {
    HeapFree(nullptr, ptr);
    return nullptr;
  }
  void* out = HeapMalloc(nullptr, size);
  if (out == nullptr) return nullptr;  // ptr stays valid, as realloc's contract says
  if (ptr != nullptr) {
    const size_t old = spilled != 0 ? spilled : malloc_usable_size(ptr);
    std::memcpy(out, ptr, std::min(old, size));
    HeapFree(nullptr, ptr);
  }
  return out;
}

void* HeapAlignedAlloc(void* /*data*/, size_t alignment, size_t size) {
  if (alignment == 0 || size > SIZE_MAX - alignment) return nullptr;
  // A mapping is page aligned.
  if (size >= SpillThreshold() && alignment <= static_cast<size_t>(sysconf(_SC_PAGESIZE))) {
    if (void* p = SpillLarge(size)) return p;
  }
  return std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}

void HeapAlignedFree(void* /*data*/, size_t /*alignment*/, void* ptr) { HeapFree(nullptr, ptr); }

}  // namespace

void SetSpillDirectory(const std::string& dir) {
  std::lock_guard<std::mutex> lock(S().mu);
  S().dir = dir;
}

size_t SpillThreshold() {
  static const size_t threshold = ThresholdFromEnv();
  return threshold;
}

void* SpillAlloc(size_t n) {
  if (n == 0 || SpillThreshold() == SIZE_MAX) return nullptr;
  std::string dir;
  {
    std::lock_guard<std::mutex> lock(S().mu);
    dir = S().dir;
  }
  if (dir.empty()) return nullptr;
  const int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    LogWarn("raft: cannot make a file-backed buffer in %s (%s); using memory", dir,
            std::strerror(errno));
    return nullptr;
  }
  // Not on a file system in memory (nothing saved), and never into the last of the disk: the
  // size may be what a peer claims its message is, and the Raft log and the store need the
  // room. Kept free: 5% of the file system and at least 256 MiB.
  struct statfs fs {};
  struct statvfs vfs {};
  bool room = ::fstatfs(fd, &fs) == 0 && fs.f_type != TMPFS_MAGIC && fs.f_type != RAMFS_MAGIC &&
              ::fstatvfs(fd, &vfs) == 0;
  if (room) {
    const unsigned __int128 avail = static_cast<unsigned __int128>(vfs.f_bavail) * vfs.f_frsize;
    const unsigned __int128 total = static_cast<unsigned __int128>(vfs.f_blocks) * vfs.f_frsize;
    const unsigned __int128 reserve = std::max<unsigned __int128>(total / 20, 256u << 20);
    room = avail > reserve && n <= avail - reserve;
  }
  if (!room) {
    ::close(fd);
    return nullptr;
  }
  // Blocks reserved now: a full disk fails here, not as a SIGBUS when a page is first written.
  const int reserved = ::posix_fallocate(fd, 0, static_cast<off_t>(n));
  void* p =
      reserved == 0 ? ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  ::close(fd);  // the mapping keeps the (unlinked) file
  if (p == MAP_FAILED) {
    LogWarn("raft: cannot make a %d-byte file-backed buffer in %s (%s); using memory", n, dir,
            std::strerror(reserved != 0 ? reserved : errno));
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(S().mu);
  S().blocks[p] = n;
  S().live.fetch_add(1, std::memory_order_release);
  S().stats.blocks_now++;
  S().stats.bytes_now += n;
  S().stats.blocks_total++;
  S().stats.bytes_total += n;
  return p;
}

bool SpillFree(void* p) {
  if (p == nullptr || S().live.load(std::memory_order_acquire) == 0) return false;
  std::unique_lock<std::mutex> lock(S().mu);
  auto it = S().blocks.find(p);
  if (it == S().blocks.end()) return false;
  const size_t n = it->second;
  S().blocks.erase(it);
  S().live.fetch_sub(1, std::memory_order_release);
  S().stats.blocks_now--;
  S().stats.bytes_now -= n;
  if (!S().reaper_started) {
    lock.unlock();
    ::munmap(p, n);  // no unmapping thread (InstallRaftHeap starts it): here, then
    return true;
  }
  S().to_unmap.emplace_back(p, n);
  S().reap_cv.notify_one();
  return true;
}

size_t SpillSize(const void* p) {
  if (p == nullptr || S().live.load(std::memory_order_acquire) == 0) return 0;
  std::lock_guard<std::mutex> lock(S().mu);
  auto it = S().blocks.find(p);
  return it == S().blocks.end() ? 0 : it->second;
}

SpillStats GetSpillStats() {
  std::lock_guard<std::mutex> lock(S().mu);
  return S().stats;
}

void InstallRaftHeap() {
  static std::once_flag once;
  std::call_once(once, [] {
    try {
      std::thread([] {
        State& st = S();
        std::unique_lock<std::mutex> reap_lock(st.mu);
        for (;;) {
          st.reap_cv.wait(reap_lock, [&] { return !st.to_unmap.empty(); });
          std::vector<std::pair<void*, size_t>> batch;
          batch.swap(st.to_unmap);
          reap_lock.unlock();
          for (const auto& [addr, len] : batch) ::munmap(addr, len);
          reap_lock.lock();
        }
      }).detach();
      std::lock_guard<std::mutex> lock(S().mu);
      S().reaper_started = true;
    } catch (const std::system_error& e) {
      LogWarn("raft: no thread to unmap file-backed buffers (%s); they are unmapped in place",
              e.what());
    }
    static raft_heap heap{nullptr,      &HeapMalloc,       &HeapFree,       &HeapCalloc,
                          &HeapRealloc, &HeapAlignedAlloc, &HeapAlignedFree};
    raft_heap_set(&heap);
  });
}

}  // namespace strongroom::raft
