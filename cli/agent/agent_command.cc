#include "cli/agent/agent_command.h"

#include <cstdio>

namespace strongroom::agent {

int Main(int, char**) {
  std::fputs("strongroom agent: not built yet\n", stderr);
  return 2;
}

}  // namespace strongroom::agent
