#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/vault/command.h"

namespace strongroom::vault {
namespace {

std::vector<const Command*> All() {
  std::vector<const Command*> all;
  for (const auto* group :
       {&BasicCommands(), &TokenCommands(), &KvCommands(), &AdminCommands(), &OperatorCommands()}) {
    for (const Command& c : *group) all.push_back(&c);
  }
  return all;
}

std::string_view GroupSynopsis(std::string_view group) {
  static constexpr std::pair<std::string_view, std::string_view> kGroups[] = {
      {"print", "Print runtime configuration (print token)"},
      {"token", "Interact with tokens"},
      {"kv", "Interact with the KV secrets engine"},
      {"secrets", "Interact with secrets engines"},
      {"auth", "Interact with auth methods"},
      {"policy", "Interact with policies"},
      {"audit", "Interact with audit devices"},
      {"operator", "Perform operator-specific tasks"},
  };
  for (const auto& [name, synopsis] : kGroups) {
    if (name == group) return synopsis;
  }
  return "";
}

}  // namespace

std::optional<int> Dispatch(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  const Command* best = nullptr;
  for (const Command* c : All()) {
    if (c->words.size() > words.size()) continue;
    bool match = true;
    for (size_t i = 0; i < c->words.size() && match; ++i) match = c->words[i] == words[i];
    if (match && (best == nullptr || c->words.size() > best->words.size())) best = c;
  }
  if (best != nullptr) {
    Context ctx(stdout, stderr);
    return best->run(
        ctx, std::vector<std::string>(
                 words.begin() + static_cast<std::ptrdiff_t>(best->words.size()), words.end()));
  }
  // A group name alone ("kv", "operator raft") or with an unknown subcommand: its commands.
  size_t depth = 0;
  std::vector<const Command*> group;
  for (const Command* c : All()) {
    size_t common = 0;
    while (common < c->words.size() && common < words.size() && c->words[common] == words[common]) {
      ++common;
    }
    if (common == 0 || common >= c->words.size()) continue;
    if (common > depth) {
      depth = common;
      group.clear();
    }
    if (common == depth) group.push_back(c);
  }
  if (group.empty()) return std::nullopt;
  std::string prefix = absl::StrJoin(
      std::vector<std::string>(words.begin(), words.begin() + static_cast<std::ptrdiff_t>(depth)),
      " ");
  std::fprintf(stderr, "Usage: strongroom %s <subcommand> [options] [args]\n\nSubcommands:\n",
               prefix.c_str());
  for (const Command* c : group) {
    std::string rest;
    for (size_t i = depth; i < c->words.size(); ++i) {
      if (!rest.empty()) rest.push_back(' ');
      rest.append(c->words[i]);
    }
    std::fprintf(stderr, "    %-20s %.*s\n", rest.c_str(), static_cast<int>(c->synopsis.size()),
                 c->synopsis.data());
  }
  return kLocalError;
}

std::vector<std::pair<std::string, std::string_view>> TopLevel() {
  std::vector<std::pair<std::string, std::string_view>> out;
  for (const Command* c : All()) {
    std::string name(c->words[0]);
    bool seen = false;
    for (const auto& [n, s] : out) seen = seen || n == name;
    if (!seen) out.emplace_back(name, c->words.size() == 1 ? c->synopsis : GroupSynopsis(name));
  }
  return out;
}

}  // namespace strongroom::vault
