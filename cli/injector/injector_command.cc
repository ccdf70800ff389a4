#include "cli/injector/injector_command.h"

#include <cstdio>

namespace strongroom::injector {

int Main(int, char**) {
  std::fputs("strongroom injector: not built yet\n", stderr);
  return 2;
}

}  // namespace strongroom::injector
