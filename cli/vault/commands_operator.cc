// operator ...
#include "cli/vault/command.h"

namespace strongroom::vault {

const std::vector<Command>& OperatorCommands() {
  static const std::vector<Command> commands = {};
  return commands;
}

}  // namespace strongroom::vault
