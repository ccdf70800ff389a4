// `strongroom`: the client-side binary. Each subcommand is one entry of kCommands.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "cli/agent/agent_command.h"
#include "cli/csi/csi_command.h"
#include "cli/injector/injector_command.h"
#include "cli/vault/command.h"

namespace {

struct Command {
  std::string_view name;
  int (*main)(int argc, char** argv);
  std::string_view summary;
};

constexpr Command kCommands[] = {
    {"agent", strongroom::agent::Main,
     "run Vault Agent's auto-auth, sinks and templates (-config=FILE)"},
    {"injector", strongroom::injector::Main,
     "serve the mutating admission webhook for vault.hashicorp.com/* annotations"},
    {"csi-provider", strongroom::csi::Main,
     "serve the Secrets Store CSI Driver's provider API on a Unix socket"},
};

int Usage(FILE* out) {
  std::fputs("Usage: strongroom <command> [args]\n\nCommands:\n", out);
  for (const Command& c : kCommands) {
    std::fprintf(out, "  %-12.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                 static_cast<int>(c.summary.size()), c.summary.data());
  }
  for (const auto& [name, synopsis] : strongroom::vault::TopLevel()) {
    std::fprintf(out, "  %-12s %.*s\n", name.c_str(), static_cast<int>(synopsis.size()),
                 synopsis.data());
  }
  return out == stdout ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage(stderr);
  std::string_view name = argv[1];
  if (name == "-h" || name == "-help" || name == "--help" || name == "help") return Usage(stdout);
  for (const Command& c : kCommands) {
    if (c.name == name) return c.main(argc - 1, argv + 1);
  }
  if (auto rc = strongroom::vault::Dispatch(argc, argv)) return *rc;
  std::fprintf(stderr, "strongroom: unknown command \"%s\"\n\n", argv[1]);
  return Usage(stderr);
}
