#include "CSQLiteTuning.h"

#include <pthread.h>
#include <sqlite3.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int result = SQLITE_OK;

static void configure(void) {
    // sqlite3_config is variadic, so Swift cannot call it: this is the only reason for C here.
    result = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int cairn_sqlite_disable_memstatus(void) {
    pthread_once(&once, configure);
    return result;
}

void cairn_stmt_reset(sqlite3_stmt *statement) {
    sqlite3_reset(statement);
}

int cairn_bind_int64(sqlite3_stmt *statement, int index, long long value) {
    return sqlite3_bind_int64(statement, index, value);
}

int cairn_bind_null(sqlite3_stmt *statement, int index) {
    return sqlite3_bind_null(statement, index);
}

int cairn_bind_text_static(sqlite3_stmt *statement, int index, const unsigned char *text, int length) {
    return sqlite3_bind_text(statement, index, text ? (const char *)text : "", length, SQLITE_STATIC);
}

int cairn_bind_blob_static(sqlite3_stmt *statement, int index, const void *bytes, int length) {
    if (!bytes || length == 0) return sqlite3_bind_zeroblob(statement, index, 0);
    return sqlite3_bind_blob(statement, index, bytes, length, SQLITE_STATIC);
}

void cairn_stmt_clear_bindings(sqlite3_stmt *statement) {
    sqlite3_clear_bindings(statement);
}

int cairn_bind_parameter_count(sqlite3_stmt *statement) {
    return sqlite3_bind_parameter_count(statement);
}

int cairn_stmt_run(sqlite3_stmt *statement) {
    int code;
    while ((code = sqlite3_step(statement)) == SQLITE_ROW) {}
    return code;
}

int cairn_in_transaction(sqlite3 *connection) {
    return sqlite3_get_autocommit(connection) == 0;
}

const char *cairn_errmsg(sqlite3 *connection) {
    return sqlite3_errmsg(connection);
}
