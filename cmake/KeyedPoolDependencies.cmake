# Finds keyedpool's dependencies. Used both by the build and by the installed KeyedPoolConfig.cmake,
# so a consumer gets exactly the same checks (and the same clear message about Boost's version).
include(CMakeFindDependencyMacro)

# Inside a package config file use find_dependency (reports "not found" to the consumer's
# find_package); in our own build, fail loudly.
macro(_keyedpool_find name)
    if(CMAKE_FIND_PACKAGE_NAME)
        find_dependency(${name} ${ARGN})
    else()
        find_package(${name} ${ARGN} REQUIRED)
    endif()
endmacro()

set(THREADS_PREFER_PTHREAD_FLAG ON)
_keyedpool_find(Threads)

# Boost.Asio's experimental::channel (the base of AsyncMutex) needs Boost >= 1.81. Debian 12's default
# libboost-dev is 1.74, which lacks it: look for the version we support and say so if it is missing.
find_package(Boost 1.81 CONFIG QUIET)
if(NOT Boost_FOUND)
    find_package(Boost QUIET)
    if(Boost_FOUND)
        set(_keyedpool_found_boost "Boost ${Boost_VERSION} was found")
    else()
        set(_keyedpool_found_boost "no Boost was found")
    endif()
    message(FATAL_ERROR
        "keyedpool needs Boost >= 1.81 (asio::experimental::channel), but ${_keyedpool_found_boost}. "
        "On Debian 12 install it with: apt-get install libboost1.81-dev "
        "(or run scripts/install-deps.sh).")
endif()
# Boost.URL parses Redis URLs; it is a compiled library, in its own Debian package.
find_package(Boost ${Boost_VERSION} EXACT CONFIG QUIET COMPONENTS url)
if(NOT TARGET Boost::url)
    message(FATAL_ERROR
        "keyedpool needs Boost.URL ${Boost_VERSION} (redis::parse_url). On Debian 12 install it "
        "with: apt-get install libboost-url1.81-dev (or run scripts/install-deps.sh).")
endif()
_keyedpool_find(OpenSSL 3)
_keyedpool_find(fmt)
_keyedpool_find(spdlog)
