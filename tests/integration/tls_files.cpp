// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "tls_files.hpp"
#include "child_process.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <sys/wait.h>

namespace keyedpool::test {

namespace {

void run(const std::vector<std::string>& args) {
    const pid_t pid = spawn_bound_child(args);
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        throw std::runtime_error("TlsFiles: '" + args[0] + " " + args[1] +
                                 "' failed (is openssl installed? scripts/install-deps.sh)");
    }
}

}  // namespace

TlsFiles::TlsFiles() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "keyedpool-tls-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("TlsFiles: mkdtemp failed");
    }
    dir_ = pattern;
    const std::vector<std::string> ec_key{"-newkey", "ec", "-pkeyopt",
                                          "ec_paramgen_curve:prime256v1", "-nodes"};
    auto self_signed = [&](const std::string& name, const std::string& subject) {
        std::vector<std::string> args{"openssl", "req", "-x509", "-new"};
        args.insert(args.end(), ec_key.begin(), ec_key.end());
        args.insert(args.end(), {"-keyout", path(name + ".key"), "-out", path(name + ".crt"),
                                 "-days", "2", "-subj", subject});
        run(args);
    };
    auto signed_by_ca = [&](const std::string& name, const std::string& subject,
                            const std::string& extensions) {
        std::vector<std::string> request{"openssl", "req", "-new"};
        request.insert(request.end(), ec_key.begin(), ec_key.end());
        request.insert(request.end(), {"-keyout", path(name + ".key"), "-out", path(name + ".csr"),
                                       "-subj", subject});
        run(request);
        std::ofstream(path(name + ".ext")) << extensions << "\n";
        run({"openssl", "x509", "-req", "-in", path(name + ".csr"), "-CA", ca(), "-CAkey",
             path("ca.key"), "-CAcreateserial", "-out", path(name + ".crt"), "-days", "2",
             "-extfile", path(name + ".ext")});
    };
    self_signed("ca", "/CN=keyedpool test CA");
    self_signed("other-ca", "/CN=keyedpool untrusted CA");
    signed_by_ca("server", "/CN=localhost",
                 "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth");
    signed_by_ca("client", "/CN=keyedpool test client", "extendedKeyUsage=clientAuth");
    std::filesystem::create_directory(ca_dir());
    std::filesystem::copy_file(ca(), ca_dir() + "/ca.crt");
    run({"openssl", "rehash", ca_dir()});
}

TlsFiles::~TlsFiles() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

std::vector<std::string> TlsFiles::server_args(unsigned tls_port, bool auth_clients) const {
    return {"--tls-port",         std::to_string(tls_port),
            "--tls-cert-file",    server_cert(),
            "--tls-key-file",     server_key(),
            "--tls-ca-cert-file", ca(),
            "--tls-auth-clients", auth_clients ? "yes" : "no"};
}

}  // namespace keyedpool::test
