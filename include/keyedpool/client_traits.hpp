// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_CLIENT_TRAITS_HPP
#define KEYEDPOOL_CLIENT_TRAITS_HPP

/// \file
/// How `KeyedClientPool` checks and closes a client. Specialise `ClientTraits<YourClient>` or pass
/// your own traits type as the pool's `Traits` parameter when your client spells these differently.

namespace keyedpool {

/// Default traits: `is_healthy` calls `client.is_connected()` when the client has it (else the
/// client is always healthy); `close` calls `client.close()` when the client has it (else nothing).
///
/// Requirements on a custom `Traits`:
/// - `static bool is_healthy(const Client&)`: cheap, non-blocking, thread-safe; it is called on
///   every hit while a short internal lock is held.
/// - `static void close(Client&)`: releases the client's resources. The pool calls it exactly once
///   per client the factory produced, never concurrently for the same client. It should not throw;
///   if it does, the exception is logged and the client still counts as closed.
template <typename Client>
struct ClientTraits {
    static bool is_healthy(const Client& client) {
        if constexpr (requires { static_cast<bool>(client.is_connected()); }) {
            return static_cast<bool>(client.is_connected());
        } else {
            (void)client;
            return true;
        }
    }

    static void close(Client& client) {
        if constexpr (requires { client.close(); }) {
            client.close();
        } else {
            (void)client;
        }
    }
};

}  // namespace keyedpool

#endif  // KEYEDPOOL_CLIENT_TRAITS_HPP
