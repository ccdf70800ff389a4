// Reading audit log files for the verifier: plain files, or gzip files (logrotate's `compress`),
// recognised by the gzip magic bytes whatever the file is called, both read in large blocks and
// split into lines without copying them (only a line that straddles two blocks is moved).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "audit/result.h"

namespace strongroom::audit {

// One open log file. Offsets are in the file's content: the bytes themselves for a plain file,
// the decompressed bytes for a gzip file.
class LogFile {
 public:
  // Fails with the reason ("cannot open: No such file or directory").
  static Result<LogFile> Open(const std::string& path);

  LogFile(LogFile&&) noexcept;
  LogFile& operator=(LogFile&&) noexcept;
  ~LogFile();

  // Read through zlib: a gzip file, or a pipe (which zlib passes through when it is not gzip).
  // Such files are read from their start only.
  bool compressed() const { return gz_ != nullptr; }
  // A regular file (not a pipe or device, which can be read only once).
  bool regular() const { return regular_; }
  // Bytes on disk (compressed size for gzip; 0 for a pipe).
  uint64_t disk_size() const { return disk_size_; }
  // Reads up to `n` bytes; 0 at the end. A read error, a corrupt or cut gzip stream (bad CRC,
  // missing end) is an error.
  Result<size_t> Read(char* buf, size_t n);
  // Whether the last error was in the file's data (a corrupt or cut gzip stream: the file is
  // damaged) rather than in reading it (an I/O error).
  bool data_error() const { return data_error_; }
  // Continues at content offset `offset` (forward only for gzip: the bytes before are
  // decompressed and dropped).
  Status Seek(uint64_t offset);

 private:
  LogFile() = default;
  void Close();

  int fd_ = -1;
  void* gz_ = nullptr;  // gzFile
  uint64_t disk_size_ = 0;
  uint64_t offset_ = 0;
  bool eof_ = false;
  bool data_error_ = false;
  bool regular_ = true;
};

// Splits a LogFile's content into lines, reading blocks of `block_size` bytes. Lines are at
// most kMaxLineBytes (chain.h) long; a longer one ends the reading (kOverlong).
class LineReader {
 public:
  enum class Next { kLine, kEnd, kOverlong, kError };

  // Reads `file` from content offset `begin` (which must be where a line starts) and yields the
  // lines that start before `end`. `buffer`, if given, is used (and grown) instead of a buffer
  // of its own: a thread that reads many pieces keeps one.
  LineReader(LogFile* file, uint64_t begin = 0, uint64_t end = UINT64_MAX,
             std::vector<char>* buffer = nullptr, size_t block_size = 1 << 20);

  // The next line without its '\n' in *line (valid until the next call); *terminated tells
  // whether the '\n' was there (only the file's last line can lack it). kError: error().
  Next Read(std::string_view* line, bool* terminated);
  const std::string& error() const { return error_; }
  bool data_error() const { return file_->data_error(); }
  // Content offset where the next line starts.
  uint64_t offset() const { return base_ + pos_; }

 private:
  bool Fill();  // reads more after buf_[len_]; false on error

  LogFile* file_;
  uint64_t end_;
  size_t block_size_;
  std::vector<char> own_;
  std::vector<char>& buf_;
  uint64_t base_ = 0;   // content offset of buf_[0]
  size_t pos_ = 0;      // next line starts at buf_[pos_]
  size_t len_ = 0;      // valid bytes in buf_
  size_t scanned_ = 0;  // buf_[pos_, scanned_) holds no '\n'
  bool at_eof_ = false;
  bool seek_failed_ = false;
  std::string error_;
};

}  // namespace strongroom::audit
