#include "appliance/engines/host_info.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace strongroom::engines {
namespace {

using core::json::array;
using core::json::object;

constexpr size_t kMaxProcFile = 1 << 20;  // /proc/cpuinfo of a large machine is ~100 KiB
constexpr size_t kMaxSmallFile = 64 << 10;
constexpr size_t kMaxCpus = 1024;
constexpr size_t kMaxDisks = 64;
constexpr size_t kMaxProcEntries = 1 << 20;

std::vector<absl::string_view> Lines(absl::string_view text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// "key\t: value" -> {key, value}; false when there is no colon.
bool KeyValue(absl::string_view line, absl::string_view* key, absl::string_view* value) {
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return false;
  *key = absl::StripAsciiWhitespace(line.substr(0, colon));
  *value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  return true;
}

int64_t ToInt(absl::string_view s) {
  int64_t v = 0;
  return absl::SimpleAtoi(s, &v) ? v : 0;
}

double Percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole) * 100.0;
}

// The first field of a one-line file, trimmed ("" when unreadable).
std::string FirstLine(const std::string& path) {
  auto text = ReadBoundedFile(path, kMaxSmallFile);
  if (!text.ok()) return "";
  absl::string_view t = *text;
  return std::string(absl::StripAsciiWhitespace(t.substr(0, t.find('\n'))));
}

// /etc/os-release: ID, VERSION_ID (quotes removed).
std::map<std::string, std::string> OsRelease(const std::string& etc) {
  std::map<std::string, std::string> out;
  auto text = ReadBoundedFile(etc + "/os-release", kMaxSmallFile);
  if (!text.ok()) return out;
  for (absl::string_view line : Lines(*text)) {
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    absl::string_view v = absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
      v = v.substr(1, v.size() - 2);
    }
    out[std::string(line.substr(0, eq))] = std::string(v);
  }
  return out;
}

// gopsutil's platform families for the distributions it names.
std::string PlatformFamily(const std::string& id) {
  static const std::set<std::string> kDebian = {"debian", "ubuntu", "linuxmint", "raspbian"};
  static const std::set<std::string> kRhel = {"rhel",      "centos", "fedora", "rocky",
                                              "almalinux", "oracle", "amzn",   "scientific"};
  if (kDebian.contains(id)) return "debian";
  if (kRhel.contains(id)) return id == "fedora" ? "fedora" : "rhel";
  if (absl::StartsWith(id, "opensuse") || id == "sles") return "suse";
  return id;
}

object HostStat(const HostInfoSources& src, absl::Time now, std::vector<std::string>* warnings) {
  object h;
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) name[0] = 0;
  h["hostname"] = std::string(name);
  uint64_t boot = 0;
  if (auto stat = ReadBoundedFile(src.proc + "/stat", kMaxProcFile); stat.ok()) {
    for (absl::string_view line : Lines(*stat)) {
      if (absl::ConsumePrefix(&line, "btime ")) boot = static_cast<uint64_t>(ToInt(line));
    }
  } else {
    warnings->push_back(absl::StrCat("host: ", stat.status().message()));
  }
  const int64_t now_s = absl::ToUnixSeconds(now);
  struct sysinfo si = {};
  const bool have_sysinfo = sysinfo(&si) == 0;
  if (boot == 0 && have_sysinfo && now_s > si.uptime) {
    boot = static_cast<uint64_t>(now_s - si.uptime);  // /proc/stat hidden (ProcSubset=pid)
  }
  h["uptime"] =
      boot > 0 && now_s > static_cast<int64_t>(boot) ? now_s - static_cast<int64_t>(boot) : 0;
  h["bootTime"] = boot;
  uint64_t procs = 0;
  if (DIR* d = opendir(src.proc.c_str()); d != nullptr) {
    size_t seen = 0;
    while (dirent* e = readdir(d)) {
      if (++seen > kMaxProcEntries) break;
      const char* n = e->d_name;
      if (*n != 0 && std::strspn(n, "0123456789") == std::strlen(n)) ++procs;
    }
    closedir(d);
  }
  if (procs == 0 && have_sysinfo) procs = si.procs;
  h["procs"] = procs;
  struct utsname u = {};
  const bool have_uname = uname(&u) == 0;
  h["os"] = have_uname ? absl::AsciiStrToLower(u.sysname) : "linux";
  const auto os = OsRelease(src.etc);
  const std::string id = os.contains("ID") ? os.at("ID") : "";
  h["platform"] = id;
  h["platformFamily"] = PlatformFamily(id);
  h["platformVersion"] = os.contains("VERSION_ID") ? os.at("VERSION_ID") : "";
  h["kernelVersion"] = have_uname ? std::string(u.release) : "";
  h["kernelArch"] = have_uname ? std::string(u.machine) : "";
  h["virtualizationSystem"] = "";
  h["virtualizationRole"] = "";
  std::string host_id = absl::AsciiStrToLower(FirstLine(src.etc + "/machine-id"));
  if (host_id.size() == 32) {  // machine-id is 32 hex digits; gopsutil shows it as a UUID
    host_id =
        absl::StrCat(host_id.substr(0, 8), "-", host_id.substr(8, 4), "-", host_id.substr(12, 4),
                     "-", host_id.substr(16, 4), "-", host_id.substr(20));
  }
  if (host_id.empty()) host_id = FirstLine(src.proc + "/sys/kernel/random/boot_id");
  h["hostId"] = host_id;
  h["hostid"] = host_id;  // Vault also keeps gopsutil v2's spelling
  return h;
}

array Disks(const HostInfoSources& src, std::vector<std::string>* warnings) {
  array out;
  // File systems backed by a device: those /proc/filesystems does not mark "nodev" (as gopsutil's
  // Partitions(all=false)).
  std::set<std::string> nodev;
  if (auto fs = ReadBoundedFile(src.proc + "/filesystems", kMaxSmallFile); fs.ok()) {
    for (absl::string_view line : Lines(*fs)) {
      if (absl::ConsumePrefix(&line, "nodev")) {
        nodev.insert(std::string(absl::StripAsciiWhitespace(line)));
      }
    }
  } else {
    // Hidden (systemd's ProcSubset=pid): the kernel's usual virtual file systems.
    nodev = {"sysfs",   "proc",        "tmpfs",      "devtmpfs", "devpts",   "cgroup",
             "cgroup2", "mqueue",      "securityfs", "debugfs",  "tracefs",  "pstore",
             "bpf",     "autofs",      "hugetlbfs",  "fusectl",  "configfs", "nsfs",
             "ramfs",   "binfmt_misc", "rpc_pipefs", "efivarfs", "overlay",  "fuse.portal"};
  }
  auto mounts = ReadBoundedFile(src.proc + "/self/mounts", kMaxProcFile);
  if (!mounts.ok()) {
    warnings->push_back(absl::StrCat("disk: ", mounts.status().message()));
    return out;
  }
  std::set<std::string> seen;
  for (absl::string_view line : Lines(*mounts)) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() < 3) continue;
    const std::string fstype(f[2]);
    if (nodev.contains(fstype)) continue;
    const std::string path = UnescapeMountField(f[1]);
    if (!seen.insert(path).second) continue;
    if (out.size() >= kMaxDisks) {
      warnings->push_back(absl::StrCat("disk: only the first ", kMaxDisks, " file systems"));
      break;
    }
    struct statvfs v = {};
    if (statvfs(path.c_str(), &v) != 0) {
      warnings->push_back(absl::StrCat("disk ", path, ": ", std::strerror(errno)));
      continue;
    }
    const uint64_t frsize = v.f_frsize;
    const uint64_t total = v.f_blocks * frsize;
    const uint64_t free = v.f_bavail * frsize;
    const uint64_t used = (v.f_blocks - v.f_bfree) * frsize;
    object d;
    d["path"] = path;
    d["fstype"] = fstype;
    d["total"] = total;
    d["free"] = free;
    d["used"] = used;
    d["usedPercent"] = Percent(used, used + free);
    d["inodesTotal"] = static_cast<uint64_t>(v.f_files);
    d["inodesUsed"] = static_cast<uint64_t>(v.f_files - v.f_ffree);
    d["inodesFree"] = static_cast<uint64_t>(v.f_ffree);
    d["inodesUsedPercent"] = Percent(v.f_files - v.f_ffree, v.f_files);
    out.emplace_back(std::move(d));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> ReadBoundedFile(const std::string& path, size_t max_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  std::string out;
  char buf[8192];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      close(fd);
      return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(err)));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      close(fd);
      return absl::ResourceExhaustedError(absl::StrCat(path, ": longer than ", max_bytes));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

std::string UnescapeMountField(absl::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && field.size() - i >= 4) {
      const absl::string_view oct = field.substr(i + 1, 3);
      if (oct.find_first_not_of("01234567") == absl::string_view::npos) {
        out.push_back(
            static_cast<char>(((oct[0] - '0') << 6) | ((oct[1] - '0') << 3) | (oct[2] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

array ParseCpuInfo(absl::string_view text) {
  array out;
  object cur;
  auto flush = [&] {
    if (!cur.empty() && out.size() < kMaxCpus) out.emplace_back(std::move(cur));
    cur = object();
  };
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::string_view key, value;
    if (absl::StripAsciiWhitespace(line).empty()) {
      flush();
      continue;
    }
    if (!KeyValue(line, &key, &value)) continue;
    if (key == "processor") {
      flush();
      cur["cpu"] = ToInt(value);
      cur["vendorId"] = "";
      cur["family"] = "";
      cur["model"] = "";
      cur["stepping"] = 0;
      cur["physicalId"] = "";
      cur["coreId"] = "";
      cur["cores"] = 1;
      cur["modelName"] = "";
      cur["mhz"] = 0.0;
      cur["cacheSize"] = 0;
      cur["flags"] = array();
      cur["microcode"] = "";
    } else if (cur.empty()) {
      continue;
    } else if (key == "vendor_id") {
      cur["vendorId"] = std::string(value);
    } else if (key == "cpu family") {
      cur["family"] = std::string(value);
    } else if (key == "model") {
      cur["model"] = std::string(value);
    } else if (key == "stepping") {
      cur["stepping"] = ToInt(value);
    } else if (key == "physical id") {
      cur["physicalId"] = std::string(value);
    } else if (key == "core id") {
      cur["coreId"] = std::string(value);
    } else if (key == "cpu cores") {
      cur["cores"] = ToInt(value);
    } else if (key == "model name") {
      cur["modelName"] = std::string(value);
    } else if (key == "cpu MHz") {
      double mhz = 0;
      if (absl::SimpleAtod(value, &mhz)) cur["mhz"] = mhz;
    } else if (key == "cache size") {
      cur["cacheSize"] = ToInt(value.substr(0, value.find(' ')));  // "512 KB"
    } else if (key == "flags" || key == "Features") {
      array flags;
      for (absl::string_view f : absl::StrSplit(value, ' ', absl::SkipEmpty())) {
        if (flags.size() >= 512) break;
        flags.emplace_back(std::string(f));
      }
      cur["flags"] = std::move(flags);
    } else if (key == "microcode") {
      cur["microcode"] = std::string(value);
    }
  }
  flush();
  return out;
}

array ParseCpuTimes(absl::string_view proc_stat, long ticks_per_second) {
  static constexpr const char* kNames[] = {"user", "nice",    "system", "idle",  "iowait",
                                           "irq",  "softirq", "steal",  "guest", "guestNice"};
  const double hz = ticks_per_second > 0 ? static_cast<double>(ticks_per_second) : 100.0;
  array out;
  for (absl::string_view line : Lines(proc_stat)) {
    // Per CPU ("cpu0 ..."), as Vault asks gopsutil for; the "cpu " total line is skipped.
    if (!absl::StartsWith(line, "cpu") || line.size() < 4 || !absl::ascii_isdigit(line[3])) {
      continue;
    }
    if (out.size() >= kMaxCpus) break;
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    object t;
    t["cpu"] = std::string(f[0]);
    std::map<std::string, double> v;
    for (size_t i = 0; i < std::size(kNames); ++i) {
      v[kNames[i]] = i + 1 < f.size() ? static_cast<double>(ToInt(f[i + 1])) / hz : 0.0;
    }
    for (const char* k : {"user", "system", "idle", "nice", "iowait", "irq", "softirq", "steal",
                          "guest", "guestNice"}) {
      t[k] = v[k];
    }
    out.emplace_back(std::move(t));
  }
  return out;
}

object ParseMemInfo(absl::string_view text) {
  std::map<std::string, uint64_t, std::less<>> kb;
  for (absl::string_view line : Lines(text)) {
    absl::string_view key, value;
    if (!KeyValue(line, &key, &value)) continue;
    const bool in_kb = absl::EndsWith(value, " kB");
    if (in_kb) value.remove_suffix(3);
    uint64_t n = 0;
    if (!absl::SimpleAtoi(value, &n)) continue;
    kb[std::string(key)] = in_kb ? n * 1024 : n;  // bytes; HugePages_* are counts
  }
  auto get = [&](absl::string_view k) -> uint64_t {
    auto it = kb.find(k);
    return it == kb.end() ? 0 : it->second;
  };
  object m;
  const uint64_t total = get("MemTotal");
  const uint64_t free = get("MemFree");
  const uint64_t buffers = get("Buffers");
  const uint64_t cached = get("Cached") + get("SReclaimable");  // as gopsutil counts them
  uint64_t available = get("MemAvailable");
  if (!kb.contains("MemAvailable")) available = free + buffers + cached;
  const uint64_t used = total > free + buffers + cached ? total - free - buffers - cached : 0;
  m["total"] = total;
  m["available"] = available;
  m["used"] = used;
  m["usedPercent"] = Percent(used, total);
  m["free"] = free;
  m["active"] = get("Active");
  m["inactive"] = get("Inactive");
  m["wired"] = 0;
  m["laundry"] = 0;
  m["buffers"] = buffers;
  m["cached"] = cached;
  m["writeBack"] = get("Writeback");
  m["dirty"] = get("Dirty");
  m["writeBackTmp"] = get("WritebackTmp");
  m["shared"] = get("Shmem");
  m["slab"] = get("Slab");
  m["sreclaimable"] = get("SReclaimable");
  m["sunreclaim"] = get("SUnreclaim");
  m["pageTables"] = get("PageTables");
  m["swapCached"] = get("SwapCached");
  m["commitLimit"] = get("CommitLimit");
  m["committedAS"] = get("Committed_AS");
  m["highTotal"] = get("HighTotal");
  m["highFree"] = get("HighFree");
  m["lowTotal"] = get("LowTotal");
  m["lowFree"] = get("LowFree");
  m["swapTotal"] = get("SwapTotal");
  m["swapFree"] = get("SwapFree");
  m["mapped"] = get("Mapped");
  m["vmallocTotal"] = get("VmallocTotal");
  m["vmallocUsed"] = get("VmallocUsed");
  m["vmallocChunk"] = get("VmallocChunk");
  m["hugePagesTotal"] = get("HugePages_Total");
  m["hugePagesFree"] = get("HugePages_Free");
  m["hugePagesRsvd"] = get("HugePages_Rsvd");
  m["hugePagesSurp"] = get("HugePages_Surp");
  m["hugePageSize"] = get("Hugepagesize");
  m["anonHugePages"] = get("AnonHugePages");
  // Vault keeps gopsutil v2's spellings of these next to v3's (helper/hostutil).
  static constexpr std::pair<const char*, const char*> kV2[] = {
      {"commitlimit", "commitLimit"},
      {"committedas", "committedAS"},
      {"highfree", "highFree"},
      {"hightotal", "highTotal"},
      {"hugepagesfree", "hugePagesFree"},
      {"hugepagesize", "hugePageSize"},
      {"hugepagestotal", "hugePagesTotal"},
      {"lowfree", "lowFree"},
      {"lowtotal", "lowTotal"},
      {"pagetables", "pageTables"},
      {"swapcached", "swapCached"},
      {"swapfree", "swapFree"},
      {"swaptotal", "swapTotal"},
      {"vmallocchunk", "vmallocChunk"},
      {"vmalloctotal", "vmallocTotal"},
      {"vmallocused", "vmallocUsed"},
      {"writeback", "writeBack"},
      {"writebacktmp", "writeBackTmp"}};
  for (const auto& [v2, v3] : kV2) {
    // Copy first: inserting v2 may rehash m and free the slot m.at(v3) refers to.
    core::json::value copy = m.at(v3);
    m[v2] = std::move(copy);
  }
  return m;
}

object CollectHostInfo(const HostInfoSources& src, absl::Time now,
                       std::vector<std::string>* warnings) {
  object o;
  if (auto cpuinfo = ReadBoundedFile(src.proc + "/cpuinfo", kMaxProcFile); cpuinfo.ok()) {
    o["cpu"] = ParseCpuInfo(*cpuinfo);
  } else {
    // /proc/cpuinfo hidden (systemd's ProcSubset=pid): one entry per online CPU, index only.
    array cpus;
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < n && static_cast<size_t>(i) < kMaxCpus; ++i) {
      cpus.emplace_back(ParseCpuInfo(absl::StrCat("processor : ", i, "\n"))[0]);
    }
    o["cpu"] = std::move(cpus);
    warnings->push_back(absl::StrCat("cpu: ", cpuinfo.status().message()));
  }
  if (auto stat = ReadBoundedFile(src.proc + "/stat", kMaxProcFile); stat.ok()) {
    o["cpu_times"] = ParseCpuTimes(*stat, sysconf(_SC_CLK_TCK));
  } else {
    o["cpu_times"] = nullptr;
    warnings->push_back(absl::StrCat("cpu_times: ", stat.status().message()));
  }
  o["disk"] = Disks(src, warnings);
  o["host"] = HostStat(src, now, warnings);
  if (auto meminfo = ReadBoundedFile(src.proc + "/meminfo", kMaxProcFile); meminfo.ok()) {
    o["memory"] = ParseMemInfo(*meminfo);
  } else if (struct sysinfo si = {}; sysinfo(&si) == 0) {
    // /proc/meminfo hidden (systemd's ProcSubset=pid): what sysinfo(2) tells.
    const uint64_t unit = si.mem_unit == 0 ? 1 : si.mem_unit;
    std::string text;
    absl::StrAppend(&text, "MemTotal: ", si.totalram * unit / 1024, " kB\n");
    absl::StrAppend(&text, "MemFree: ", si.freeram * unit / 1024, " kB\n");
    absl::StrAppend(&text, "Buffers: ", si.bufferram * unit / 1024, " kB\n");
    absl::StrAppend(&text, "Shmem: ", si.sharedram * unit / 1024, " kB\n");
    absl::StrAppend(&text, "SwapTotal: ", si.totalswap * unit / 1024, " kB\n");
    absl::StrAppend(&text, "SwapFree: ", si.freeswap * unit / 1024, " kB\n");
    o["memory"] = ParseMemInfo(text);
    warnings->push_back(
        absl::StrCat("memory: ", meminfo.status().message(), "; totals from sysinfo(2) only"));
  } else {
    o["memory"] = nullptr;
    warnings->push_back(absl::StrCat("memory: ", meminfo.status().message()));
  }
  o["timestamp"] = core::FormatRfc3339Nano(now);
  return o;
}

}  // namespace strongroom::engines
