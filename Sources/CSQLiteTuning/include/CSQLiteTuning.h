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

#endif
