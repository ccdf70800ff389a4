// libraft's C headers, included into C++ (raft/fixture.h too: libraft's in-memory test cluster,
// used by tests/unit/raft; declarations only).
//
// raft.h checks its own ABI with static asserts over sizeof() of structs defined inside the
// expression, which is valid C but not C++. Those checks belong to libraft's C build; here they
// are switched off (raft.h picks _Static_assert when __cpp_static_assert is not defined), and the
// declarations get C linkage (raft.h has no extern "C" of its own).
#pragma once

#include <uv.h>

#pragma push_macro("__cpp_static_assert")
#undef __cpp_static_assert
#define _Static_assert(cond, message)
extern "C" {
#include <raft.h>
#include <raft/fixture.h>
#include <raft/uv.h>
}
#undef _Static_assert
#pragma pop_macro("__cpp_static_assert")
