#include "audit/log_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "audit/chain.h"

namespace strongroom::audit {

namespace {

gzFile Gz(void* p) { return static_cast<gzFile>(p); }

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

Result<LogFile> LogFile::Open(const std::string& path) {
  LogFile f;
  f.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd_ < 0) return Err("cannot open: " + ErrnoText());
  struct stat st {};
  if (::fstat(f.fd_, &st) != 0) return Err("cannot stat: " + ErrnoText());
  if (S_ISDIR(st.st_mode)) return Err("cannot read: is a directory");
  f.regular_ = S_ISREG(st.st_mode);
  f.disk_size_ = f.regular_ ? static_cast<uint64_t>(st.st_size) : 0;
  // A pipe (`<(zcat ...)`, /dev/stdin) cannot be peeked at: zlib reads it, gzip or not (it
  // passes other data through as it is).
  bool gzip = !S_ISREG(st.st_mode);
  if (!gzip) {
    unsigned char magic[2] = {0, 0};
    const ssize_t n = ::pread(f.fd_, magic, sizeof(magic), 0);
    if (n < 0) return Err("read error: " + ErrnoText());
    gzip = n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  }
  if (gzip) {
    // zlib takes the descriptor over (gzclose closes it).
    gzFile gz = ::gzdopen(f.fd_, "rb");
    if (gz == nullptr) return Err("cannot read gzip file: out of memory");
    f.fd_ = -1;
    f.gz_ = gz;
    ::gzbuffer(gz, 1 << 20);  // before the first read; a failure only leaves the default
  }
  return f;
}

LogFile::LogFile(LogFile&& o) noexcept
    : fd_(o.fd_),
      gz_(o.gz_),
      disk_size_(o.disk_size_),
      offset_(o.offset_),
      eof_(o.eof_),
      data_error_(o.data_error_),
      regular_(o.regular_) {
  o.fd_ = -1;
  o.gz_ = nullptr;
}

LogFile& LogFile::operator=(LogFile&& o) noexcept {
  if (this != &o) {
    Close();
    fd_ = o.fd_;
    gz_ = o.gz_;
    disk_size_ = o.disk_size_;
    offset_ = o.offset_;
    eof_ = o.eof_;
    data_error_ = o.data_error_;
    regular_ = o.regular_;
    o.fd_ = -1;
    o.gz_ = nullptr;
  }
  return *this;
}

LogFile::~LogFile() { Close(); }

void LogFile::Close() {
  if (gz_ != nullptr) ::gzclose_r(Gz(gz_));
  if (fd_ >= 0) ::close(fd_);
  gz_ = nullptr;
  fd_ = -1;
}

Result<size_t> LogFile::Read(char* buf, size_t n) {
  if (eof_ || n == 0) return size_t{0};
  if (gz_ == nullptr) {
    while (true) {
      const ssize_t r = ::read(fd_, buf, n);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Err("read error: " + ErrnoText());
      if (r == 0) eof_ = true;
      offset_ += static_cast<uint64_t>(r);
      return static_cast<size_t>(r);
    }
  }
  const auto want = static_cast<unsigned>(std::min<size_t>(n, INT_MAX));
  const int r = ::gzread(Gz(gz_), buf, want);
  int code = Z_OK;
  const char* message = ::gzerror(Gz(gz_), &code);
  if (r < 0 || (code != Z_OK && code != Z_BUF_ERROR)) {
    if (code == Z_ERRNO) return Err("read error: " + ErrnoText());
    data_error_ = true;
    return Err(std::string("the gzip data is corrupt: ") + (message ? message : "unknown error"));
  }
  if (static_cast<unsigned>(r) < want) {
    // A short read is the end of the input; Z_BUF_ERROR says it ended inside a gzip stream.
    if (code == Z_BUF_ERROR) {
      data_error_ = true;
      return Err("the gzip file is cut off (its compressed data ends in the middle)");
    }
    if (r == 0) eof_ = true;
  }
  offset_ += static_cast<uint64_t>(r);
  return static_cast<size_t>(r);
}

Status LogFile::Seek(uint64_t offset) {
  if (offset == offset_) return OkStatus();
  if (offset > static_cast<uint64_t>(INT64_MAX)) return Err("seek beyond the end");
  if (gz_ == nullptr) {
    if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
      return Err("seek error: " + ErrnoText());
    }
  } else {
    if (offset < offset_) return Err("cannot seek backwards in a gzip file");
    if (::gzseek(Gz(gz_), static_cast<z_off_t>(offset), SEEK_SET) < 0) {
      int code = Z_OK;
      const char* message = ::gzerror(Gz(gz_), &code);
      data_error_ = code != Z_ERRNO;
      return Err(std::string("the gzip data is corrupt: ") + (message ? message : "seek failed"));
    }
  }
  offset_ = offset;
  eof_ = false;
  return OkStatus();
}

LineReader::LineReader(LogFile* file, uint64_t begin, uint64_t end, std::vector<char>* buffer,
                       size_t block_size)
    : file_(file),
      end_(end),
      block_size_(block_size),
      buf_(buffer != nullptr ? *buffer : own_),
      base_(begin) {
  Status s = file_->Seek(begin);
  if (!s.ok()) {
    seek_failed_ = true;
    error_ = s.message();
  }
}

bool LineReader::Fill() {
  // Keep the unfinished line, move it to the front, and read a block after it.
  if (pos_ > 0) {
    std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
    base_ += pos_;
    len_ -= pos_;
    scanned_ -= pos_;
    pos_ = 0;
  }
  if (buf_.size() < len_ + block_size_) buf_.resize(len_ + block_size_);
  Result<size_t> n = file_->Read(buf_.data() + len_, block_size_);
  if (!n.ok()) {
    error_ = n.message();
    return false;
  }
  if (*n == 0) at_eof_ = true;
  len_ += *n;
  return true;
}

LineReader::Next LineReader::Read(std::string_view* line, bool* terminated) {
  if (seek_failed_) return Next::kError;
  while (true) {
    if (pos_ == len_ && at_eof_) return Next::kEnd;
    if (pos_ < len_ && base_ + pos_ >= end_) return Next::kEnd;
    const char* start = buf_.data() + pos_;
    const void* nl =
        scanned_ < len_ ? std::memchr(buf_.data() + scanned_, '\n', len_ - scanned_) : nullptr;
    if (nl != nullptr) {
      const size_t eol = static_cast<size_t>(static_cast<const char*>(nl) - buf_.data());
      if (eol - pos_ > kMaxLineBytes) return Next::kOverlong;
      *line = std::string_view(start, eol - pos_);
      *terminated = true;
      pos_ = eol + 1;
      scanned_ = pos_;
      return Next::kLine;
    }
    scanned_ = len_;
    if (len_ - pos_ > kMaxLineBytes) return Next::kOverlong;
    if (at_eof_) {
      *line = std::string_view(start, len_ - pos_);
      *terminated = false;
      pos_ = len_;
      scanned_ = len_;
      return Next::kLine;
    }
    if (pos_ == len_ && base_ + pos_ >= end_) return Next::kEnd;
    if (!Fill()) return Next::kError;
  }
}

}  // namespace strongroom::audit
