// sqlite_statement.h — the store's two SQLite helpers (internal to engine/store): a prepared
// statement that finalizes itself and names where it failed, and a BEGIN IMMEDIATE … COMMIT scope
// that rolls back when an exception leaves it.
#pragma once
#include <cstdint>
#include <string>

#include <sqlite3.h>

#include "core/error.h"

namespace meft {

// A prepared statement that finalizes itself; bind by position from 1.
class Stmt {
public:
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    Stmt(sqlite3* db, const std::string& sql, const std::string& where) : db_(db), where_(where) {
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK)
            throw Error(where + ": " + sqlite3_errmsg(db) + " (preparing: " + sql + ")");
    }
    ~Stmt() { sqlite3_finalize(s_); }
    Stmt& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(s_, i, v)); }
    Stmt& bind(int i, int v) { return check(sqlite3_bind_int64(s_, i, v)); }
    Stmt& bind(int i, double v) { return check(sqlite3_bind_double(s_, i, v)); }
    Stmt& bind(int i, const std::string& v) { return check(sqlite3_bind_text(s_, i, v.c_str(), -1, SQLITE_TRANSIENT)); }
    bool step() {
        const int rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        throw Error(where_ + ": " + sqlite3_errmsg(db_));
    }
    void run() {
        step();
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
    double f64(int c) const { return sqlite3_column_double(s_, c); }
    std::string text(int c) const {
        const unsigned char* t = sqlite3_column_text(s_, c);
        return t ? reinterpret_cast<const char*>(t) : "";
    }

private:
    Stmt& check(int rc) {
        if (rc != SQLITE_OK) throw Error(where_ + ": " + sqlite3_errmsg(db_));
        return *this;
    }
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
    std::string where_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when an exception leaves the scope.
class Transaction {
public:
    explicit Transaction(sqlite3* h) : h_(h) {
        if (sqlite3_exec(h_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
            throw Error(std::string("experiment database: cannot begin a transaction: ") + sqlite3_errmsg(h_));
    }
    void commit() {
        if (sqlite3_exec(h_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
            throw Error(std::string("experiment database: commit failed: ") + sqlite3_errmsg(h_));
        done_ = true;
    }
    ~Transaction() {
        if (!done_) sqlite3_exec(h_, "ROLLBACK", nullptr, nullptr, nullptr);
    }

private:
    sqlite3* h_;
    bool done_ = false;
};

}  // namespace meft
