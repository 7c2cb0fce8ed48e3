// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_KEYEDPOOL_HPP
#define KEYEDPOOL_KEYEDPOOL_HPP

/// \file
/// Convenience header: everything in keyedpool's public API.

#include <keyedpool/async_mutex.hpp>
#include <keyedpool/client_traits.hpp>
#include <keyedpool/keyed_client_pool.hpp>
#include <keyedpool/keyed_mutex.hpp>
#include <keyedpool/local_lock_service.hpp>
#include <keyedpool/local_semaphore_service.hpp>
#include <keyedpool/lock_guard.hpp>
#include <keyedpool/logging.hpp>
#include <keyedpool/permit_source.hpp>
#include <keyedpool/pool_options.hpp>
#include <keyedpool/pool_stats.hpp>
#include <keyedpool/redis/cluster.hpp>
#include <keyedpool/redis/connection.hpp>
#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/redis/reply.hpp>
#include <keyedpool/redis/semaphore_service.hpp>
#include <keyedpool/redis/url.hpp>
#include <keyedpool/result_code.hpp>
#include <keyedpool/result_code_format.hpp>
#include <keyedpool/retry.hpp>
#include <keyedpool/semaphore.hpp>
#include <keyedpool/time_traits.hpp>
#include <keyedpool/with_lock.hpp>

#endif  // KEYEDPOOL_KEYEDPOOL_HPP
