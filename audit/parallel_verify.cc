#include "audit/parallel_verify.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "audit/chain.h"
#include "audit/checkpoint.h"
#include "audit/log_reader.h"
#include "audit/merkle.h"
#include "audit/note.h"

namespace strongroom::audit {

namespace {

constexpr uint64_t kDefaultChunkBytes = 32 << 20;
// A gzip chunk's head is kept in memory for the stitching thread, up to this much (then it
// decompresses the file again).
constexpr size_t kMaxHeadInMemory = 8 << 20;
// A canonical checkpoint line ends with its last member, "type" (members are sorted).
constexpr std::string_view kCheckpointLineEnd = R"("type":"checkpoint"})";

struct Chunk {
  size_t file = 0;
  uint64_t begin = 0;         // content offset (nominal: the chunk's lines start at or after)
  uint64_t end = UINT64_MAX;  // the chunk holds the lines that start before this
  bool first_of_file = false;
};

struct ChunkResult {
  bool done = false;
  uint64_t line_begin = 0;  // where the chunk's first line starts
  // A body: the lines from after the chunk's first usable checkpoint line up to and including
  // the first usable checkpoint line of the chunks after it (or the end of the file), verified
  // from the first one's state.
  std::optional<Verifier> body;
  uint64_t body_begin = 0;  // content offset where the body starts
  uint64_t body_end = 0;    // and where the line after it starts
  // gzip: the head (the lines up to and including that checkpoint line), newlines included.
  std::optional<std::string> head_text;
};

// The state after a checkpoint line, read from the line alone (nothing checked but its form).
std::optional<StartPoint> SegmentStart(std::string_view line, const std::string& file) {
  Result<ChainedRecord> rec = ParseChainedLine(line);
  if (!rec.ok() || !rec->is_checkpoint || !rec->frontier) return std::nullopt;
  Result<SignedNote> note = ParseSignedNote(rec->note);
  if (!note.ok()) return std::nullopt;
  Result<Checkpoint> cp = ParseCheckpointText(note->text);
  if (!cp.ok() || cp->head_seq + 1 != rec->seq) return std::nullopt;
  Result<CompactRange> tree = CompactRange::FromNodes(cp->tree_size, *rec->frontier);
  if (!tree.ok()) return std::nullopt;
  StartPoint start;
  start.checkpoint.checkpoint = std::move(cp).value();
  start.checkpoint.note = rec->note;
  start.checkpoint.seq = rec->seq;
  start.checkpoint.file = file;
  start.state.last_seq = rec->seq;
  start.state.last_hash = rec->hash;
  start.state.tree = std::move(tree).value();
  return start;
}

// The first line start at or after `offset` in a plain file (its size when there is none).
uint64_t LineStartAtOrAfter(LogFile* file, uint64_t offset) {
  if (offset == 0) return 0;
  if (!file->Seek(offset - 1).ok()) return offset;  // the reader reports the error
  std::vector<char> buf(64 << 10);
  uint64_t pos = offset - 1;
  while (true) {
    Result<size_t> n = file->Read(buf.data(), buf.size());
    if (!n.ok() || *n == 0) return pos;
    const void* nl = std::memchr(buf.data(), '\n', *n);
    if (nl != nullptr)
      return pos + static_cast<uint64_t>(static_cast<const char*>(nl) - buf.data()) + 1;
    pos += *n;
  }
}

class ParallelRun {
 public:
  ParallelRun(std::span<const std::string> paths, const VerifyOptions& options)
      : paths_(paths), options_(options), threads_(options.threads) {
    options_.threads = 1;
    segment_options_ = options_;
    segment_options_.start.reset();
    const uint64_t chunk = options.chunk_bytes > 0 ? options.chunk_bytes : kDefaultChunkBytes;
    for (size_t i = 0; i < paths.size(); ++i) {
      Result<LogFile> f = LogFile::Open(paths[i]);
      const bool split = f.ok() && !f->compressed() && f->disk_size() > chunk;
      const uint64_t size = f.ok() ? f->disk_size() : 0;
      uint64_t begin = 0;
      do {
        Chunk c;
        c.file = i;
        c.begin = begin;
        c.first_of_file = begin == 0;
        begin = split && size - begin > chunk ? begin + chunk : UINT64_MAX;
        c.end = begin;
        chunks_.push_back(c);
      } while (begin != UINT64_MAX);
    }
    results_.resize(chunks_.size());
    window_ = 2 * static_cast<size_t>(options.threads) + 2;  // results held at once
  }

  Report Run() {
    std::vector<std::thread> workers;
    const size_t n = std::min<size_t>(threads_, chunks_.size());
    for (size_t t = 0; t < n; ++t) workers.emplace_back([this] { Work(); });
    Report report = Stitch();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& w : workers) w.join();
    return report;
  }

 private:
  void Work() {
    std::vector<char> buffer;  // one read buffer for all the chunks this thread verifies
    while (true) {
      size_t j = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock,
                 [&] { return stop_ || (next_ < chunks_.size() && next_ < stitched_ + window_); });
        if (stop_ || next_ >= chunks_.size()) return;
        j = next_++;
      }
      ChunkResult r = j == 0 ? First() : Verify(j, &buffer);
      {
        std::lock_guard<std::mutex> lock(mu_);
        results_[j] = std::move(r);
        results_[j].done = true;
      }
      cv_.notify_all();
    }
  }

  bool Stopping() const { return stop_flag_.load(std::memory_order_relaxed); }

  // Verifies lines from `reader` into `body` (which has begun) up to the end of chunk `c`, and
  // on to the first usable checkpoint line that starts at or after the end (the start of the
  // next chunk with a body), so that no line between two bodies is left for the stitching
  // thread. Returns where the line after the last one verified starts.
  uint64_t VerifyBody(const Chunk& c, const std::string& path, LineReader* reader, Verifier* body) {
    std::string_view line;
    bool terminated = false;
    uint64_t n = 0;
    while (!body->failed()) {
      if ((++n & 1023) == 0 && Stopping()) break;
      const uint64_t line_start = reader->offset();
      const LineReader::Next next = reader->Read(&line, &terminated);
      if (next == LineReader::Next::kEnd) break;
      if (next != LineReader::Next::kLine) {
        body->FailLine(Break::Kind::kTamper, "unreadable");  // verified again in order
        break;
      }
      body->AddLine(line, terminated);
      if (line_start >= c.end && terminated && line.ends_with(kCheckpointLineEnd) &&
          SegmentStart(line, path)) {
        break;
      }
    }
    return reader->offset();
  }

  // Chunk 0 starts where the log starts (seq 1 or the caller's start point): it is verified by
  // the verifier that then stitches everything else onto it.
  ChunkResult First() {
    ChunkResult r;
    const Chunk& c = chunks_[0];
    const std::string& path = paths_[c.file];
    r.body.emplace(options_);
    r.body->BeginFile(path);
    Result<LogFile> file = LogFile::Open(path);
    if (!file.ok()) {
      r.body->FailLine(Break::Kind::kIo, file.message());
      return r;
    }
    LineReader reader(&*file);
    r.body_end = VerifyBody(c, path, &reader, &*r.body);
    if (r.body->failed()) {  // verified again in order, for the exact break
      r.body.emplace(options_);
      r.body->BeginFile(path);
      r.body_end = FeedFileRange(path, 0, c.end, &*r.body);
    }
    return r;
  }

  ChunkResult Verify(size_t j, std::vector<char>* buffer) {
    const Chunk& c = chunks_[j];
    const std::string& path = paths_[c.file];
    ChunkResult r;
    Result<LogFile> file = LogFile::Open(path);
    if (!file.ok()) return r;  // the stitching thread reads it again and reports the error
    r.line_begin = file->compressed() ? 0 : LineStartAtOrAfter(&*file, c.begin);
    if (r.line_begin >= c.end) return r;
    LineReader reader(&*file, r.line_begin, UINT64_MAX, buffer);
    if (file->compressed() && c.first_of_file) r.head_text.emplace();
    std::string_view line;
    bool terminated = false;
    std::optional<StartPoint> start;
    while (!start) {
      if (Stopping() || reader.offset() >= c.end ||
          reader.Read(&line, &terminated) != LineReader::Next::kLine) {
        r.head_text.reset();
        return r;
      }
      if (r.head_text) {
        if (r.head_text->size() + line.size() + 1 > kMaxHeadInMemory) {
          r.head_text.reset();
          return r;
        }
        r.head_text->append(line);
        if (terminated) r.head_text->push_back('\n');
      }
      if (terminated && line.ends_with(kCheckpointLineEnd)) start = SegmentStart(line, path);
    }
    r.body_begin = reader.offset();
    r.body.emplace(segment_options_);
    r.body->BeginSegment(*start, path);
    r.body_end = VerifyBody(c, path, &reader, &*r.body);
    return r;
  }

  ChunkResult Take(size_t j) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return results_[j].done; });
    ChunkResult r = std::move(results_[j]);
    results_[j] = ChunkResult();
    stitched_ = j + 1;
    lock.unlock();
    cv_.notify_all();
    return r;
  }

  Report Stitch() {
    ChunkResult first = Take(0);
    Verifier st = std::move(*first.body);
    uint64_t at = first.body_end;  // where the next line of the current file starts
    for (size_t j = 1; j < chunks_.size() && !st.failed(); ++j) {
      ChunkResult r = Take(j);
      const Chunk& c = chunks_[j];
      const std::string& path = paths_[c.file];
      if (c.first_of_file) {
        st.BeginFile(path);
        at = 0;
      }
      if (!r.body) {
        at = FeedFileRange(path, at, c.end, &st);
        continue;
      }
      if (at < r.body_begin) {  // the head: once per file, or after a chunk without a body
        if (r.head_text && at == 0) {
          std::string_view text = *r.head_text;
          while (!text.empty() && !st.failed()) {
            const size_t eol = text.find('\n');
            st.AddLine(text.substr(0, eol), true);
            text.remove_prefix(eol + 1);
          }
          at = r.body_begin;
        } else {
          at = FeedFileRange(path, at, r.body_begin, &st);
        }
      }
      if (st.failed()) break;
      if (at != r.body_begin || r.body->failed() || !st.SameState(*r.body)) {
        at = FeedFileRange(path, at, c.end, &st);  // in order: the exact break, if any
        continue;
      }
      st.MergeSegment(std::move(*r.body));
      at = r.body_end;
    }
    stop_flag_.store(true, std::memory_order_relaxed);
    return st.Finish();
  }

  std::span<const std::string> paths_;
  VerifyOptions options_;
  VerifyOptions segment_options_;
  unsigned threads_ = 1;
  std::vector<Chunk> chunks_;
  std::vector<ChunkResult> results_;
  size_t window_ = 4;

  std::mutex mu_;
  std::condition_variable cv_;
  size_t next_ = 0;
  size_t stitched_ = 0;
  bool stop_ = false;
  std::atomic<bool> stop_flag_{false};
};

}  // namespace

Report VerifyFilesParallel(std::span<const std::string> paths, const VerifyOptions& options) {
  // A pipe can be read only once, and in order: then everything is read in one pass.
  bool all_regular = !paths.empty() && options.threads > 1;
  for (size_t i = 0; i < paths.size() && all_regular; ++i) {
    Result<LogFile> f = LogFile::Open(paths[i]);
    all_regular = !f.ok() || f->regular();
  }
  if (!all_regular) {
    VerifyOptions one = options;
    one.threads = 1;
    return VerifyFiles(paths, one);
  }
  ParallelRun run(paths, options);
  return run.Run();
}

}  // namespace strongroom::audit
