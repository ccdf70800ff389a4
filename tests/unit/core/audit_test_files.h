// Reading back what the audit writer's unit tests wrote: a whole file, and its lines.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace strongroom::core::testing {

// The bytes of the file at `path` (empty when it cannot be read).
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// `text` split at '\n' (no line for a final '\n').
inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace strongroom::core::testing
