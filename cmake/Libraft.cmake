# libraft (cowsql raft) 0.22.1, built from Debian's source tarball with the patches in
# packaging/libraft/patches, and linked statically as the imported target sr_libraft.
#
# packaging/install-deps.sh fetches the tarball (STRONGROOM_LIBRAFT_TARBALL) through apt's
# source index and checks it against packaging/libraft/raft_0.22.1.orig.tar.gz.sha256. The
# build (packaging/libraft/build.sh: autotools, gcc, Debian's libuv1-dev and liblz4-dev) runs
# here, at configure time, once per (tarball, patches, build.sh, gcc version): its result is
# kept in STRONGROOM_LIBRAFT_CACHE, shared by every build directory and checkout of the machine,
# under a lock. It is not instrumented in sanitizer builds (as Debian's libraft.a was not).
#
# STRONGROOM_LIBRAFT_PREFIX=DIR links a libraft already installed in DIR instead (no build, no
# patches): for trying a test against another libraft, never for a build that ships.

set(SR_LIBRAFT_VERSION 0.22.1)
set(SR_LIBRAFT_DIR ${PROJECT_SOURCE_DIR}/packaging/libraft)
set(SR_LIBRAFT_TARBALL_NAME raft_${SR_LIBRAFT_VERSION}.orig.tar.gz)
file(STRINGS ${SR_LIBRAFT_DIR}/${SR_LIBRAFT_TARBALL_NAME}.sha256 sr_libraft_sha_line LIMIT_COUNT 1)
string(REGEX MATCH "^[0-9a-f]+" SR_LIBRAFT_TARBALL_SHA256 "${sr_libraft_sha_line}")
string(LENGTH "${SR_LIBRAFT_TARBALL_SHA256}" sr_libraft_sha_len)
if(NOT sr_libraft_sha_len EQUAL 64)
  message(FATAL_ERROR "libraft: no SHA-256 in ${SR_LIBRAFT_DIR}/${SR_LIBRAFT_TARBALL_NAME}.sha256")
endif()
file(GLOB SR_LIBRAFT_PATCHES LIST_DIRECTORIES false ${SR_LIBRAFT_DIR}/patches/*.patch)
list(SORT SR_LIBRAFT_PATCHES)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${SR_LIBRAFT_DIR}/build.sh ${SR_LIBRAFT_DIR}/${SR_LIBRAFT_TARBALL_NAME}.sha256
             ${SR_LIBRAFT_DIR}/patches ${SR_LIBRAFT_PATCHES})

set(STRONGROOM_LIBRAFT_TARBALL /var/cache/strongroom-build/${SR_LIBRAFT_TARBALL_NAME}
    CACHE FILEPATH "libraft's source tarball (packaging/install-deps.sh fetches it)")
if(DEFINED ENV{STRONGROOM_LIBRAFT_CACHE})
  set(sr_libraft_cache_default $ENV{STRONGROOM_LIBRAFT_CACHE})
elseif(DEFINED ENV{HOME})
  set(sr_libraft_cache_default $ENV{HOME}/.cache/strongroom-libraft)
else()
  set(sr_libraft_cache_default ${PROJECT_BINARY_DIR}/libraft-cache)
endif()
set(STRONGROOM_LIBRAFT_CACHE ${sr_libraft_cache_default}
    CACHE PATH "where patched libraft builds are kept (one directory per source, patches and compiler)")
set(STRONGROOM_LIBRAFT_PREFIX "" CACHE PATH
    "link the libraft installed here as it is (no build, no patches): for experiments only")

# Builds libraft into the cache unless it is there; sets SR_LIBRAFT_PREFIX in the caller.
function(sr_build_libraft)
  find_program(SR_GCC gcc REQUIRED)
  execute_process(COMMAND ${SR_GCC} -dumpfullversion -dumpmachine OUTPUT_VARIABLE gcc_id
                  OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
  set(key_input "${SR_LIBRAFT_TARBALL_SHA256}\n${gcc_id}\n")
  file(SHA256 ${SR_LIBRAFT_DIR}/build.sh build_sha)
  string(APPEND key_input "build.sh ${build_sha}\n")
  set(patch_names "")
  foreach(p IN LISTS SR_LIBRAFT_PATCHES)
    file(SHA256 ${p} patch_sha)
    get_filename_component(patch_name ${p} NAME)
    string(APPEND key_input "${patch_name} ${patch_sha}\n")
    list(APPEND patch_names ${patch_name})
  endforeach()
  string(SHA256 key "${key_input}")
  string(SUBSTRING ${key} 0 16 key)
  set(prefix ${STRONGROOM_LIBRAFT_CACHE}/raft-${SR_LIBRAFT_VERSION}-${key})
  set(SR_LIBRAFT_PREFIX ${prefix} PARENT_SCOPE)
  if(EXISTS ${prefix}/lib/libraft.a)
    return()
  endif()

  file(MAKE_DIRECTORY ${STRONGROOM_LIBRAFT_CACHE})
  # Two configures of the same key at once (two build directories): the second waits.
  file(LOCK ${prefix}.lock GUARD FUNCTION TIMEOUT 3600 RESULT_VARIABLE lock_result)
  if(NOT lock_result STREQUAL "0")
    message(FATAL_ERROR "libraft: cannot lock ${prefix}.lock: ${lock_result}")
  endif()
  if(EXISTS ${prefix}/lib/libraft.a)
    return()
  endif()
  if(NOT EXISTS ${STRONGROOM_LIBRAFT_TARBALL})
    message(FATAL_ERROR "libraft: ${STRONGROOM_LIBRAFT_TARBALL} not found; run "
                        "packaging/install-deps.sh (it fetches Debian's ${SR_LIBRAFT_TARBALL_NAME})")
  endif()
  file(SHA256 ${STRONGROOM_LIBRAFT_TARBALL} tarball_sha)
  if(NOT tarball_sha STREQUAL SR_LIBRAFT_TARBALL_SHA256)
    message(FATAL_ERROR "libraft: ${STRONGROOM_LIBRAFT_TARBALL} has SHA-256 ${tarball_sha}, "
                        "expected ${SR_LIBRAFT_TARBALL_SHA256} (packaging/libraft)")
  endif()
  string(REPLACE ";" ", " patch_list "${patch_names}")
  message(STATUS "libraft ${SR_LIBRAFT_VERSION}: building with ${patch_list} into ${prefix} "
                 "(once for this source, patches and compiler; takes a few minutes)")
  set(log ${prefix}.log)
  execute_process(COMMAND ${SR_LIBRAFT_DIR}/build.sh ${STRONGROOM_LIBRAFT_TARBALL} ${prefix}
                          ${SR_LIBRAFT_PATCHES}
                  OUTPUT_FILE ${log} ERROR_FILE ${log} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    file(STRINGS ${log} lines)
    list(LENGTH lines n)
    if(n GREATER 40)
      math(EXPR first "${n} - 40")
      list(SUBLIST lines ${first} 40 lines)
    endif()
    list(JOIN lines "\n" tail)
    message(FATAL_ERROR "libraft: packaging/libraft/build.sh failed (${rc}); the end of ${log}:\n${tail}")
  endif()
  message(STATUS "libraft ${SR_LIBRAFT_VERSION}: built in ${prefix}")
endfunction()

if(STRONGROOM_LIBRAFT_PREFIX)
  set(SR_LIBRAFT_PREFIX ${STRONGROOM_LIBRAFT_PREFIX})
  message(WARNING "libraft: linking ${SR_LIBRAFT_PREFIX} as it is (STRONGROOM_LIBRAFT_PREFIX), "
                  "not the patched build of packaging/libraft")
else()
  sr_build_libraft()
endif()
foreach(f include/raft.h include/raft/uv.h include/raft/fixture.h lib/libraft.a)
  if(NOT EXISTS ${SR_LIBRAFT_PREFIX}/${f})
    message(FATAL_ERROR "libraft: no ${f} in ${SR_LIBRAFT_PREFIX}")
  endif()
endforeach()
# A copy in the build directory (rewritten only when it differs): the compile lines then name
# the same include directory whatever the cache key, so a new patch set relinks but does not
# recompile strongroom, and ccache hits across checkouts (CCACHE_BASEDIR).
set(sr_libraft_local ${PROJECT_BINARY_DIR}/libraft)
file(MAKE_DIRECTORY ${sr_libraft_local}/include/raft ${sr_libraft_local}/lib)
foreach(f include/raft.h include/raft/uv.h include/raft/fixture.h lib/libraft.a)
  file(COPY_FILE ${SR_LIBRAFT_PREFIX}/${f} ${sr_libraft_local}/${f} ONLY_IF_DIFFERENT)
endforeach()
add_library(sr_libraft STATIC IMPORTED GLOBAL)
set_target_properties(sr_libraft PROPERTIES
  IMPORTED_LOCATION ${sr_libraft_local}/lib/libraft.a
  INTERFACE_INCLUDE_DIRECTORIES ${sr_libraft_local}/include
  INTERFACE_LINK_LIBRARIES "PkgConfig::LIBUV;PkgConfig::LZ4")
