// secrets, auth, policy, audit.
#include "cli/vault/command.h"

namespace strongroom::vault {

const std::vector<Command>& AdminCommands() {
  static const std::vector<Command> commands = {};
  return commands;
}

}  // namespace strongroom::vault
