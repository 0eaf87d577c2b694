#ifndef CSQLITE_TUNING_H
#define CSQLITE_TUNING_H

/// Turns off SQLite's memory statistics for this process, once, before its first connection.
///
/// With statistics on (the build default), every allocation SQLite makes takes one mutex shared
/// by all connections of the process, so connections working on different threads (the server's
/// writer and readers, or many replicas in one process) wait on each other. Cairn reads none of
/// those statistics. Returns 0 (SQLITE_OK) when the setting took effect, 21 (SQLITE_MISUSE) when
/// SQLite was already initialized (then nothing changes and nothing breaks).
int cairn_sqlite_disable_memstatus(void);

struct sqlite3;

/// Makes SQLite write each WAL file's frames with one call per commit instead of two per page,
/// once, for this process, before its first connection: registers a shim over the default VFS
/// (as the new default) whose WAL files hold the writes that extend them in memory until the
/// transaction's commit frame is complete, or anything else touches the file or the writer lets go
/// of the WAL's write lock. Same bytes, same order, same fsync (see CSQLiteTuning.c). Turns memory statistics off first
/// (registering initializes SQLite). Returns 0 (SQLITE_OK) when registered.
int cairn_sqlite_coalesce_wal_writes(void);
/// The writes SQLite made to the connection's open WAL file, and the writes the shim made of
/// them (for tests and benchmarks). Returns 1, or 0 (counts untouched) when the connection has
/// no WAL open through the shim.
int cairn_sqlite_wal_write_counts(struct sqlite3 *connection, long long *writes, long long *flushes);

// Direct binding for the statements every pushed op runs (see `DirectStatement` in the server).
// The statement is GRDB's prepared `sqlite3_stmt`, seen from Swift as an `OpaquePointer`; the
// header names the struct only, so that it does not bring a second copy of sqlite3.h's API into
// Swift beside GRDB's.
struct sqlite3_stmt;

/// Resets a statement (after its last run, finished or failed) so that it can be bound again.
void cairn_stmt_reset(struct sqlite3_stmt *statement);
/// The sqlite3_bind_* result code (0 = SQLITE_OK). A null pointer with length 0 binds an empty
/// text or blob, never NULL. Texts and blobs are not copied (SQLITE_STATIC): the bytes must stay
/// where they are until the statement has run and its bindings are cleared
/// (`cairn_stmt_clear_bindings`). The system SQLite is built without its lookaside allocator, so
/// a copy was a malloc and a free.
int cairn_bind_int64(struct sqlite3_stmt *statement, int index, long long value);
int cairn_bind_null(struct sqlite3_stmt *statement, int index);
int cairn_bind_text_static(struct sqlite3_stmt *statement, int index, const unsigned char *text, int length);
int cairn_bind_blob_static(struct sqlite3_stmt *statement, int index, const void *bytes, int length);
/// Sets every parameter back to NULL, so that the statement points at no bytes of the caller's.
void cairn_stmt_clear_bindings(struct sqlite3_stmt *statement);
/// How many parameters the statement has.
int cairn_bind_parameter_count(struct sqlite3_stmt *statement);
/// Runs a statement that returns no rows: steps it to the end. Returns 101 (SQLITE_DONE), or the
/// error code (the statement is then left for the caller to read the message and reset).
int cairn_stmt_run(struct sqlite3_stmt *statement);
/// 1 while the connection is inside a transaction (not in autocommit mode), else 0.
int cairn_in_transaction(struct sqlite3 *connection);
/// The message of the connection's last error (SQLite's own string, valid until its next call).
const char *cairn_errmsg(struct sqlite3 *connection);

/// glibc's `malloc_trim(0)`: merges the heap's free chunks and gives whole free pages back to
/// the system (a no-op where glibc is not the C library). Not SQLite's, but this is the
/// package's one C module.
void cairn_malloc_trim(void);

/// WAL checkpoints off the writer's path (see CSQLiteTuning.c): replaces the automatic checkpoint
/// of `writer` (call on its thread, before it writes) with a WAL hook that, past `threshold` frames,
/// has a thread of its own (started then, with a connection of its own) copy the log with PASSIVE
/// checkpoints; the writer copies the last `slack` frames itself, and checkpoints inline from
/// `hard_limit` frames on. Returns NULL (and installs nothing) for an in-memory or temporary
/// database, or when out of memory. The state lives as long as the process: the hook may run
/// until the writer connection closes.
struct cairn_wal_background;
struct cairn_wal_background *cairn_wal_background_install(struct sqlite3 *writer, int threshold, int slack, int hard_limit);
/// Ends the thread (after the pass under way, closing its connection); from then on the writer
/// checkpoints inline past `threshold`, as SQLite does by default.
void cairn_wal_background_stop(struct cairn_wal_background *state);
/// For tests: the thread's PASSIVE passes, the writer's own checkpoints, the largest log seen after
/// a commit, and the log after the last commit (frames).
void cairn_wal_background_counts(
    struct cairn_wal_background *state, long long *background_passes, long long *inline_checkpoints, int *max_frames, int *frames
);

#endif
