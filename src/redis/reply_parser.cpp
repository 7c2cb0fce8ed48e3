// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "reply_parser.hpp"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <new>
#include <stdexcept>

namespace keyedpool::redis::detail {

// hiredis calls these while it parses. The root object is a heap `Reply`; children live inside
// their parent's `elements`, which createArray sizes up front, so their addresses are stable.
struct ParserCallbacks {
    static ReplyParser& parser_of(const redisReadTask* task) {
        return *static_cast<ReplyParser*>(task->privdata);
    }

    static void* attach(const redisReadTask* task, Reply value, std::size_t bytes) {
        ReplyParser& parser = parser_of(task);
        parser.partial_bytes_ += bytes + sizeof(Reply);
        if (parser.partial_bytes_ > parser.max_reply_bytes_) {
            return nullptr;  // hiredis reports an error; we report protocol_error
        }
        try {
            if (task->parent != nullptr) {
                auto* parent = static_cast<Reply*>(task->parent->obj);
                Reply& slot = parent->elements()[static_cast<std::size_t>(task->idx)];
                slot = std::move(value);
                return &slot;
            }
            return new Reply(std::move(value));
        } catch (const std::bad_alloc&) {
            return nullptr;
        }
    }

    static void* create_string(const redisReadTask* task, char* data, size_t length) {
        std::string text(data, length);
        switch (task->type) {
            case REDIS_REPLY_ERROR:
                return attach(task, Reply::error(std::move(text)), length);
            case REDIS_REPLY_STATUS:
                return attach(task, Reply::status(std::move(text)), length);
            default:
                return attach(task, Reply::string(std::move(text)), length);
        }
    }

    static void* create_array(const redisReadTask* task, int elements) {
        ReplyParser& parser = parser_of(task);
        // Every element takes at least 4 bytes on the wire (":0\r\n"): a larger count cannot fit.
        if (elements < 0 || static_cast<std::size_t>(elements) > parser.max_reply_bytes_ / 4) {
            return nullptr;
        }
        try {
            return attach(task,
                          Reply::array(std::vector<Reply>(static_cast<std::size_t>(elements))),
                          static_cast<std::size_t>(elements) * sizeof(Reply));
        } catch (const std::bad_alloc&) {
            return nullptr;
        }
    }

    static void* create_integer(const redisReadTask* task, long long value) {
        return attach(task, Reply::integer(value), 0);
    }

    static void* create_nil(const redisReadTask* task) { return attach(task, Reply::nil(), 0); }

    static void free_object(void* object) { delete static_cast<Reply*>(object); }  // roots only
};

namespace {
redisReplyObjectFunctions reply_functions{
    ParserCallbacks::create_string, ParserCallbacks::create_array, ParserCallbacks::create_integer,
    ParserCallbacks::create_nil, ParserCallbacks::free_object};
}  // namespace

ReplyParser::ReplyParser(std::size_t max_reply_bytes)
    : max_reply_bytes_(max_reply_bytes), reader_(redisReaderCreateWithFunctions(&reply_functions)) {
    if (reader_ == nullptr) {
        throw std::bad_alloc();
    }
    reader_->privdata = this;
}

ReplyParser::~ReplyParser() {
    redisReaderFree(reader_);
}

void ReplyParser::fail(std::string why) {
    failed_ = true;
    error_text_ = std::move(why);
}

void ReplyParser::feed(std::string_view bytes) {
    if (failed_) {
        return;
    }
    if (redisReaderFeed(reader_, bytes.data(), bytes.size()) != REDIS_OK) {
        fail(reader_->errstr);
    }
}

std::optional<Reply> ReplyParser::next(boost::system::error_code& ec) {
    if (!failed_) {
        void* object = nullptr;
        if (redisReaderGetReply(reader_, &object) != REDIS_OK) {
            fail(reader_->err == REDIS_ERR_OOM ? "reply too large or too many elements"
                                               : reader_->errstr);
        } else if (object != nullptr) {
            std::unique_ptr<Reply> reply(static_cast<Reply*>(object));
            partial_bytes_ = 0;
            return std::move(*reply);
        } else if (reader_->len - reader_->pos + partial_bytes_ > max_reply_bytes_) {
            fail("reply larger than max_reply_bytes");
        }
    }
    if (failed_) {
        ec = ResultCode::protocol_error;
    }
    return std::nullopt;
}

bool ReplyParser::has_partial_reply() const noexcept {
    return reader_->len > reader_->pos || reader_->reply != nullptr;
}

std::string format_command(const std::vector<std::string>& arguments) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(arguments.size());
    lengths.reserve(arguments.size());
    for (const auto& argument : arguments) {
        argv.push_back(argument.data());
        lengths.push_back(argument.size());
    }
    char* target = nullptr;
    const int length =
        redisFormatCommandArgv(&target, static_cast<int>(argv.size()), argv.data(), lengths.data());
    if (length < 0 || target == nullptr) {
        throw std::bad_alloc();
    }
    std::string command(target, static_cast<std::size_t>(length));
    redisFreeCommand(target);
    return command;
}

}  // namespace keyedpool::redis::detail
