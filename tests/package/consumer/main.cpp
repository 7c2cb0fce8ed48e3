// Minimal consumer: builds one client through the pool and prints the result code's category.
#include <keyedpool/keyedpool.hpp>

#include <boost/asio.hpp>

#include <iostream>
#include <memory>
#include <string>

struct Client {
    std::string endpoint;
};

int main() {
    boost::asio::io_context io;
    keyedpool::KeyedClientPool<std::string, Client> pool(
        io.get_executor(),
        [](const std::string& key) -> boost::asio::awaitable<std::shared_ptr<Client>> {
            co_return std::make_shared<Client>(Client{key});
        });
    std::string got;
    pool.async_get("db:1", [&](boost::system::error_code ec, std::shared_ptr<Client> c) {
        if (!ec) {
            got = c->endpoint;
        }
    });
    io.run();
    boost::system::error_code ec = keyedpool::ResultCode::backoff;
    std::cout << got << " " << ec.category().name() << "\n";
    return got == "db:1" ? 0 : 1;
}
