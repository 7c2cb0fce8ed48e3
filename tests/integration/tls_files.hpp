// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Certificates for TLS tests, made by the openssl command line tool.
#ifndef KEYEDPOOL_TESTS_TLS_FILES_HPP
#define KEYEDPOOL_TESTS_TLS_FILES_HPP

#include <string>
#include <vector>

namespace keyedpool::test {

/// A throwaway PKI in a fresh temporary directory, removed by the destructor: a CA, a server
/// certificate it signed for 127.0.0.1, ::1 and localhost, a client certificate it signed, and a
/// second CA that signed nothing we use (to be distrusted). EC P-256 keys: made in milliseconds.
class TlsFiles {
  public:
    TlsFiles();
    ~TlsFiles();
    TlsFiles(const TlsFiles&) = delete;
    TlsFiles& operator=(const TlsFiles&) = delete;

    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    std::string ca() const { return path("ca.crt"); }
    /// A directory holding the CA, prepared with `openssl rehash` (for `TlsConfig::ca_path`).
    std::string ca_dir() const { return path("cas"); }
    std::string other_ca() const { return path("other-ca.crt"); }
    std::string server_cert() const { return path("server.crt"); }
    std::string server_key() const { return path("server.key"); }
    std::string client_cert() const { return path("client.crt"); }
    std::string client_key() const { return path("client.key"); }

    /// redis-server arguments serving TLS on `tls_port` with these files (the plain port stays
    /// for the fixture's readiness check and admin). `auth_clients`: require a client certificate.
    std::vector<std::string> server_args(unsigned tls_port, bool auth_clients = false) const;

  private:
    std::string dir_;
};

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_TLS_FILES_HPP
