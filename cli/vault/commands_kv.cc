// kv ...
#include "cli/vault/command.h"

namespace strongroom::vault {

const std::vector<Command>& KvCommands() {
  static const std::vector<Command> commands = {};
  return commands;
}

}  // namespace strongroom::vault
