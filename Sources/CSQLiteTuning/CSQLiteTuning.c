#include "CSQLiteTuning.h"

#include <pthread.h>
#include <sqlite3.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int result = SQLITE_OK;

static void configure(void) {
    // sqlite3_config is variadic, so Swift cannot call it.
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

// MARK: WAL writes coalesced until the commit

// A commit in WAL mode writes each changed page as two `pwrite` calls (the frame's 24-byte header,
// then the page): 94 to 132 system calls for a push of 100 creates, a tenth of the writer's time.
// The shim below holds the writes that extend a WAL file (new frames, a new log's header) in
// memory and writes them in a few calls when the transaction's commit frame is complete, and
// before anything else touches the file (a write before the log's end, a read, its size, a sync,
// a truncation, a file control, its close, the release of the WAL's write lock, seen through the
// database file's shared-memory lock or, in exclusive locking mode, its file lock). A database
// opened with `psow=0` is written straight through. The file then holds the same bytes, in the same
// order, before the same fsync; a crash or a kill before that write loses only frames SQLite had
// not committed yet, as if it had been stopped before writing them. SQLite publishes frames in
// the WAL index only after the commit frame and the rewrites that follow it (`walIndexWriteHdr`
// after `walRewriteChecksums`), all written by then, so other connections never look for bytes
// still in the buffer, whatever the connection's `synchronous` level.

#include <stdlib.h>
#include <string.h>

// The unix VFS writes at most 128 KiB - 1 bytes per call (`seekAndWriteFd` masks the count with
// 0x1ffff, and a larger write then fails as SQLITE_FULL): the buffer goes out in chunks of 120 KiB,
// two or three for a push of 100 creates.
enum { CAIRN_WAL_FRAME_HEADER = 24, CAIRN_WAL_BUFFER = 1 << 20, CAIRN_WAL_CHUNK = 120 * 1024 };

typedef struct CairnWalFile {
    sqlite3_file base;
    /// The root VFS's file, in the same allocation, right after this struct.
    sqlite3_file *real;
    unsigned char *buffer;
    /// The file offset of buffer[0], and how many bytes are held.
    sqlite3_int64 start;
    int length;
    /// How far the log's writes have reached since its header was last written (at offset 0).
    sqlite3_int64 end;
    /// Where the commit frame whose header was written last ends (0: none pending, -1: at the
    /// end of the next write, the page size not being known yet).
    sqlite3_int64 commitEnd;
    /// Where the last frame header ended, and the page size (0 until a page followed a header).
    sqlite3_int64 headerEnd;
    int pageSize;
    /// Writes SQLite made, and writes made of them (for tests and benchmarks).
    long long writes;
    long long flushes;
    /// The WAL's file name (SQLite's, valid while the file is open).
    const char *name;
    /// Every write goes straight through (a database opened with `psow=0`: SQLite then pads a
    /// commit to a sector boundary and syncs in the middle of a frame, in pieces of any size).
    int passThrough;
    /// On the list of files holding bytes (guarded by `cairn_held_mutex`).
    int listed;
    struct CairnWalFile *nextHeld;
} CairnWalFile;

/// The database file of a connection: SQLite's own, but for the release of the WAL's write lock.
typedef struct CairnDbFile {
    sqlite3_file base;
    sqlite3_file *real;
    /// The name of the database's WAL (SQLite's, valid while the file is open).
    const char *wal;
} CairnDbFile;

static sqlite3_vfs *cairn_root_vfs;
static sqlite3_vfs cairn_vfs;
static sqlite3_io_methods cairn_wal_methods;
static sqlite3_io_methods cairn_db_methods;

// The WAL files holding bytes. A transaction that wrote frames (a page-cache spill) and was then
// rolled back leaves them held, and SQLite does not touch the WAL again before it releases the
// write lock; another connection may then commit over those offsets. So when a connection
// releases a WAL's write lock, whatever is held for that WAL is written first, while the lock is
// still held, as SQLite would have written it.
static pthread_mutex_t cairn_held_mutex = PTHREAD_MUTEX_INITIALIZER;
static CairnWalFile *cairn_held;

static void cairnWalListHeld(CairnWalFile *p) {
    pthread_mutex_lock(&cairn_held_mutex);
    if (!p->listed) {
        p->listed = 1;
        p->nextHeld = cairn_held;
        cairn_held = p;
    }
    pthread_mutex_unlock(&cairn_held_mutex);
}

static void cairnWalUnlistHeld(CairnWalFile *p) {
    pthread_mutex_lock(&cairn_held_mutex);
    if (p->listed) {
        for (CairnWalFile **q = &cairn_held; *q; q = &(*q)->nextHeld) {
            if (*q == p) {
                *q = p->nextHeld;
                break;
            }
        }
        p->listed = 0;
    }
    pthread_mutex_unlock(&cairn_held_mutex);
}

static int cairnWalFlush(CairnWalFile *p) {
    int length = p->length;
    if (length == 0) return SQLITE_OK;
    p->length = 0;
    cairnWalUnlistHeld(p);
    for (int done = 0; done < length;) {
        int count = length - done < CAIRN_WAL_CHUNK ? length - done : CAIRN_WAL_CHUNK;
        p->flushes += 1;
        int rc = p->real->pMethods->xWrite(p->real, p->buffer + done, count, p->start + done);
        if (rc != SQLITE_OK) return rc;
        done += count;
    }
    return SQLITE_OK;
}

/// Writes straight to the file, after what the buffer holds.
static int cairnWalWriteThrough(CairnWalFile *p, const void *bytes, int count, sqlite3_int64 offset) {
    int rc = cairnWalFlush(p);
    if (rc != SQLITE_OK) return rc;
    p->flushes += 1;
    return p->real->pMethods->xWrite(p->real, bytes, count, offset);
}

static int cairnWalWrite(sqlite3_file *file, const void *bytes, int count, sqlite3_int64 offset) {
    CairnWalFile *p = (CairnWalFile *)file;
    p->writes += 1;
    // The log's header: a new log starts.
    if (offset == 0) p->end = 0;
    sqlite3_int64 end = p->end;
    if (offset + count > p->end) p->end = offset + count;
    // Only writes that extend the log are held. A write before its end rewrites bytes already
    // handed over (a frame's page written again in its own transaction, or the frame headers
    // whose checksums SQLite then rewrites, the commit frame's last, with no page after it), and
    // goes straight through, as does a write larger than a chunk (SQLite writes a page at a
    // time, 64 KiB at most) or any write when no buffer could be had.
    if (p->passThrough || (offset != 0 && offset < end) || count > CAIRN_WAL_CHUNK) return cairnWalWriteThrough(p, bytes, count, offset);
    int rc;
    // Only what continues the buffer joins it.
    if (p->length > 0 && (offset != p->start + p->length || count > CAIRN_WAL_BUFFER - p->length)) {
        if ((rc = cairnWalFlush(p)) != SQLITE_OK) return rc;
    }
    if (!p->buffer) p->buffer = malloc(CAIRN_WAL_BUFFER);
    if (!p->buffer) return cairnWalWriteThrough(p, bytes, count, offset);
    if (p->length == 0) {
        p->start = offset;
        cairnWalListHeld(p);
    }
    memcpy(p->buffer + p->length, bytes, (size_t)count);
    p->length += count;
    if (count == CAIRN_WAL_FRAME_HEADER) {
        // A frame header: bytes 4-7 hold the database size after a commit, 0 in other frames.
        const unsigned char *header = bytes;
        if (header[4] | header[5] | header[6] | header[7]) {
            p->commitEnd = p->pageSize ? offset + CAIRN_WAL_FRAME_HEADER + p->pageSize : -1;
        }
        p->headerEnd = offset + CAIRN_WAL_FRAME_HEADER;
        return SQLITE_OK;
    }
    if (offset == 0 && count >= 32) {
        // The log's header: bytes 8-11 hold the page size.
        const unsigned char *header = bytes;
        int size = (header[8] << 24) | (header[9] << 16) | (header[10] << 8) | header[11];
        if (size >= 512 && size <= 65536 && (size & (size - 1)) == 0) p->pageSize = size;
    } else if (offset == p->headerEnd && p->pageSize == 0 && count >= 512 && count <= 65536 && (count & (count - 1)) == 0) {
        // The page after a frame header (whole: SQLite splits a page only when it pads a commit
        // to a sector boundary, after the commit frame itself) tells the page size when this
        // connection did not write the log's header.
        p->pageSize = count;
    }
    if (p->commitEnd == -1) p->commitEnd = offset + count;
    // The commit frame is complete, however its page was split (the padding frames of a file
    // that is not power-safe to overwrite are commit frames too, and SQLite syncs in the middle
    // of the last one): write what is held.
    if (p->commitEnd > 0 && p->start + p->length >= p->commitEnd) {
        p->commitEnd = 0;
        return cairnWalFlush(p);
    }
    return SQLITE_OK;
}

static int cairnWalClose(sqlite3_file *file) {
    CairnWalFile *p = (CairnWalFile *)file;
    int rc = cairnWalFlush(p);
    cairnWalUnlistHeld(p);
    int closed = p->real->pMethods->xClose(p->real);
    free(p->buffer);
    p->buffer = NULL;
    return rc != SQLITE_OK ? rc : closed;
}

static int cairnWalRead(sqlite3_file *file, void *bytes, int count, sqlite3_int64 offset) {
    CairnWalFile *p = (CairnWalFile *)file;
    int rc = cairnWalFlush(p);
    return rc != SQLITE_OK ? rc : p->real->pMethods->xRead(p->real, bytes, count, offset);
}

static int cairnWalTruncate(sqlite3_file *file, sqlite3_int64 size) {
    CairnWalFile *p = (CairnWalFile *)file;
    int rc = cairnWalFlush(p);
    return rc != SQLITE_OK ? rc : p->real->pMethods->xTruncate(p->real, size);
}

static int cairnWalSync(sqlite3_file *file, int flags) {
    CairnWalFile *p = (CairnWalFile *)file;
    int rc = cairnWalFlush(p);
    return rc != SQLITE_OK ? rc : p->real->pMethods->xSync(p->real, flags);
}

static int cairnWalFileSize(sqlite3_file *file, sqlite3_int64 *size) {
    CairnWalFile *p = (CairnWalFile *)file;
    int rc = cairnWalFlush(p);
    return rc != SQLITE_OK ? rc : p->real->pMethods->xFileSize(p->real, size);
}

static int cairnWalFileControl(sqlite3_file *file, int op, void *argument) {
    CairnWalFile *p = (CairnWalFile *)file;
    int rc = cairnWalFlush(p);
    return rc != SQLITE_OK ? rc : p->real->pMethods->xFileControl(p->real, op, argument);
}

// The rest go straight to the real file.
#define CAIRN_REAL(file) (((CairnWalFile *)(file))->real)
static int cairnWalLock(sqlite3_file *f, int level) { return CAIRN_REAL(f)->pMethods->xLock(CAIRN_REAL(f), level); }
static int cairnWalUnlock(sqlite3_file *f, int level) { return CAIRN_REAL(f)->pMethods->xUnlock(CAIRN_REAL(f), level); }
static int cairnWalCheckReservedLock(sqlite3_file *f, int *out) { return CAIRN_REAL(f)->pMethods->xCheckReservedLock(CAIRN_REAL(f), out); }
static int cairnWalSectorSize(sqlite3_file *f) { return CAIRN_REAL(f)->pMethods->xSectorSize(CAIRN_REAL(f)); }
static int cairnWalDeviceCharacteristics(sqlite3_file *f) { return CAIRN_REAL(f)->pMethods->xDeviceCharacteristics(CAIRN_REAL(f)); }

#define CAIRN_DB(file) (((CairnDbFile *)(file))->real)
static int cairnDbClose(sqlite3_file *f) { return CAIRN_DB(f)->pMethods->xClose(CAIRN_DB(f)); }
static int cairnDbRead(sqlite3_file *f, void *b, int n, sqlite3_int64 o) { return CAIRN_DB(f)->pMethods->xRead(CAIRN_DB(f), b, n, o); }
static int cairnDbWrite(sqlite3_file *f, const void *b, int n, sqlite3_int64 o) { return CAIRN_DB(f)->pMethods->xWrite(CAIRN_DB(f), b, n, o); }
static int cairnDbTruncate(sqlite3_file *f, sqlite3_int64 size) { return CAIRN_DB(f)->pMethods->xTruncate(CAIRN_DB(f), size); }
static int cairnDbSync(sqlite3_file *f, int flags) { return CAIRN_DB(f)->pMethods->xSync(CAIRN_DB(f), flags); }
static int cairnDbFileSize(sqlite3_file *f, sqlite3_int64 *size) { return CAIRN_DB(f)->pMethods->xFileSize(CAIRN_DB(f), size); }
static int cairnDbLock(sqlite3_file *f, int level) { return CAIRN_DB(f)->pMethods->xLock(CAIRN_DB(f), level); }
static void cairnDbWriteHeld(sqlite3_file *f);
static int cairnDbUnlock(sqlite3_file *f, int level) {
    // A connection in exclusive locking mode takes and releases the WAL's write lock without
    // the shared-memory lock: its writes end when it lets go of the database file.
    cairnDbWriteHeld(f);
    return CAIRN_DB(f)->pMethods->xUnlock(CAIRN_DB(f), level);
}
static int cairnDbCheckReservedLock(sqlite3_file *f, int *out) { return CAIRN_DB(f)->pMethods->xCheckReservedLock(CAIRN_DB(f), out); }
static int cairnDbFileControl(sqlite3_file *f, int op, void *argument) { return CAIRN_DB(f)->pMethods->xFileControl(CAIRN_DB(f), op, argument); }
static int cairnDbSectorSize(sqlite3_file *f) { return CAIRN_DB(f)->pMethods->xSectorSize(CAIRN_DB(f)); }
static int cairnDbDeviceCharacteristics(sqlite3_file *f) { return CAIRN_DB(f)->pMethods->xDeviceCharacteristics(CAIRN_DB(f)); }
static int cairnDbShmMap(sqlite3_file *f, int region, int size, int extend, void volatile **out) {
    return CAIRN_DB(f)->pMethods->xShmMap(CAIRN_DB(f), region, size, extend, out);
}
static void cairnDbShmBarrier(sqlite3_file *f) { CAIRN_DB(f)->pMethods->xShmBarrier(CAIRN_DB(f)); }
static int cairnDbShmUnmap(sqlite3_file *f, int deleteFlag) { return CAIRN_DB(f)->pMethods->xShmUnmap(CAIRN_DB(f), deleteFlag); }
static int cairnDbFetch(sqlite3_file *f, sqlite3_int64 offset, int count, void **out) { return CAIRN_DB(f)->pMethods->xFetch(CAIRN_DB(f), offset, count, out); }
static int cairnDbUnfetch(sqlite3_file *f, sqlite3_int64 offset, void *pointer) { return CAIRN_DB(f)->pMethods->xUnfetch(CAIRN_DB(f), offset, pointer); }

/// Writes what this connection's WAL holds. SQLite hands the WAL's open the very name pointer
/// `sqlite3_filename_wal` gives for the database, so the pointers match only for the connection's
/// own WAL: another connection's, on another thread, is never touched.
static void cairnDbWriteHeld(sqlite3_file *f) {
    const char *wal = ((CairnDbFile *)f)->wal;
    if (!wal) return;
    CairnWalFile *held = NULL;
    pthread_mutex_lock(&cairn_held_mutex);
    for (CairnWalFile **q = &cairn_held; *q;) {
        CairnWalFile *p = *q;
        if (p->name == wal) {
            *q = p->nextHeld;
            p->listed = 0;
            p->nextHeld = held;
            held = p;
        } else {
            q = &p->nextHeld;
        }
    }
    pthread_mutex_unlock(&cairn_held_mutex);
    for (CairnWalFile *p = held; p;) {
        CairnWalFile *next = p->nextHeld;
        // Nothing here can report a failure: it would have been a failed spill of a transaction
        // already rolled back, whose frames no commit points at.
        (void)cairnWalFlush(p);
        p = next;
    }
}

static int cairnDbShmLock(sqlite3_file *f, int offset, int count, int flags) {
    // Slot 0 is the WAL's write lock (WAL_WRITE_LOCK): before it goes, what the connection holds
    // for its WAL is written (only the writer can hold any).
    if (offset == 0 && flags == (SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE)) cairnDbWriteHeld(f);
    return CAIRN_DB(f)->pMethods->xShmLock(CAIRN_DB(f), offset, count, flags);
}

static int cairnOpen(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *outFlags) {
    (void)vfs;
    if ((flags & SQLITE_OPEN_MAIN_DB) && name) {
        CairnDbFile *d = (CairnDbFile *)file;
        memset(d, 0, sizeof(*d));
        d->real = (sqlite3_file *)((char *)file + sizeof(CairnWalFile));
        int rc = cairn_root_vfs->xOpen(cairn_root_vfs, name, d->real, flags, outFlags);
        if (rc != SQLITE_OK) {
            if (d->real->pMethods) d->real->pMethods->xClose(d->real);
            d->base.pMethods = NULL;
            return rc;
        }
        d->wal = sqlite3_filename_wal(name);
        d->base.pMethods = &cairn_db_methods;
        return SQLITE_OK;
    }
    // Every other file but a WAL is the root VFS's own, in the larger allocation.
    if (!(flags & SQLITE_OPEN_WAL)) return cairn_root_vfs->xOpen(cairn_root_vfs, name, file, flags, outFlags);
    CairnWalFile *p = (CairnWalFile *)file;
    memset(p, 0, sizeof(*p));
    p->real = (sqlite3_file *)(p + 1);
    p->headerEnd = -1;
    p->name = name;
    // The WAL's name carries the database's URI parameters.
    p->passThrough = name && !sqlite3_uri_boolean(name, "psow", 1);
    int rc = cairn_root_vfs->xOpen(cairn_root_vfs, name, p->real, flags, outFlags);
    if (rc != SQLITE_OK) {
        // SQLite closes a file whose open failed only if pMethods is set: close the real one here.
        if (p->real->pMethods) p->real->pMethods->xClose(p->real);
        p->base.pMethods = NULL;
        return rc;
    }
    p->base.pMethods = &cairn_wal_methods;
    return SQLITE_OK;
}

static pthread_once_t cairn_vfs_once = PTHREAD_ONCE_INIT;
static int cairn_vfs_result = SQLITE_OK;

static void cairnRegister(void) {
    // Finding and registering a VFS initializes SQLite, after which its memory statistics can no
    // longer be turned off.
    cairn_sqlite_disable_memstatus();
    cairn_root_vfs = sqlite3_vfs_find(NULL);
    if (!cairn_root_vfs) {
        cairn_vfs_result = SQLITE_ERROR;
        return;
    }
    // Version 1: SQLite maps shared memory and pages of the database file, never of a WAL.
    cairn_wal_methods = (sqlite3_io_methods){
        .iVersion = 1,
        .xClose = cairnWalClose,
        .xRead = cairnWalRead,
        .xWrite = cairnWalWrite,
        .xTruncate = cairnWalTruncate,
        .xSync = cairnWalSync,
        .xFileSize = cairnWalFileSize,
        .xLock = cairnWalLock,
        .xUnlock = cairnWalUnlock,
        .xCheckReservedLock = cairnWalCheckReservedLock,
        .xFileControl = cairnWalFileControl,
        .xSectorSize = cairnWalSectorSize,
        .xDeviceCharacteristics = cairnWalDeviceCharacteristics,
    };
    cairn_db_methods = (sqlite3_io_methods){
        .iVersion = 3,
        .xClose = cairnDbClose,
        .xRead = cairnDbRead,
        .xWrite = cairnDbWrite,
        .xTruncate = cairnDbTruncate,
        .xSync = cairnDbSync,
        .xFileSize = cairnDbFileSize,
        .xLock = cairnDbLock,
        .xUnlock = cairnDbUnlock,
        .xCheckReservedLock = cairnDbCheckReservedLock,
        .xFileControl = cairnDbFileControl,
        .xSectorSize = cairnDbSectorSize,
        .xDeviceCharacteristics = cairnDbDeviceCharacteristics,
        .xShmMap = cairnDbShmMap,
        .xShmLock = cairnDbShmLock,
        .xShmBarrier = cairnDbShmBarrier,
        .xShmUnmap = cairnDbShmUnmap,
        .xFetch = cairnDbFetch,
        .xUnfetch = cairnDbUnfetch,
    };
    cairn_vfs = *cairn_root_vfs;
    cairn_vfs.zName = "cairn-coalesced-wal";
    cairn_vfs.szOsFile = (int)sizeof(CairnWalFile) + cairn_root_vfs->szOsFile;
    cairn_vfs.xOpen = cairnOpen;
    cairn_vfs.pNext = NULL;
    cairn_vfs_result = sqlite3_vfs_register(&cairn_vfs, 1);
}

int cairn_sqlite_coalesce_wal_writes(void) {
    pthread_once(&cairn_vfs_once, cairnRegister);
    return cairn_vfs_result;
}

int cairn_sqlite_wal_write_counts(sqlite3 *connection, long long *writes, long long *flushes) {
    sqlite3_file *file = NULL;
    if (sqlite3_file_control(connection, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file) != SQLITE_OK) return 0;
    if (!file || file->pMethods != &cairn_wal_methods) return 0;
    CairnWalFile *p = (CairnWalFile *)file;
    *writes = p->writes;
    *flushes = p->flushes;
    return 1;
}

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void cairn_malloc_trim(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

// MARK: WAL checkpoints in the background

// SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000 frames: that
// commit copies every page of the log into the database file and fsyncs it before it returns, on
// the one writer every push waits for (about one push in 17 of 100 creates). Here the writer's WAL
// hook replaces it. Past `threshold` frames the hook wakes a thread of its own, which copies the
// log on a connection of its own with PASSIVE checkpoints (they never block the writer or a
// reader, and copy only committed frames). Once that thread has copied all but `slack` frames of
// the log, the writer's next commit copies the rest itself (a PASSIVE checkpoint of a few frames),
// so that the log is fully copied and the next write transaction starts it over from its
// beginning, as after an automatic checkpoint. From `hard_limit` frames on (the thread falls
// behind, or could not start), and after `cairn_wal_background_stop`, the writer checkpoints
// inline past `threshold`, as SQLite does by default. The commits' own durability is untouched:
// each still fsyncs the WAL before it returns.

#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>

struct cairn_wal_background {
    int threshold;
    int slack;
    int hard_limit;
    char *path;
    // Writer thread only (the hook).
    int last_frames;
    int thread_started;
    // Shared.
    _Atomic int frames;
    _Atomic int cycle;          // times the writer saw the log start over
    _Atomic long long copied;   // (cycle << 32) | frames the thread had copied in that cycle
    _Atomic int pending;        // the thread was woken and has not started its passes yet
    _Atomic int stopped;
    _Atomic int max_frames;
    _Atomic long long background_passes;
    _Atomic long long inline_checkpoints;
    sem_t wake;
};

static void cairn_wal_inline_checkpoint(struct cairn_wal_background *state, sqlite3 *db, const char *name) {
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    atomic_fetch_add(&state->inline_checkpoints, 1);
}

static void *cairn_wal_background_run(void *argument) {
    struct cairn_wal_background *state = argument;
    sqlite3 *connection = NULL;
    // A first read opens the connection's view of the WAL (a checkpoint before it may find none).
    if (sqlite3_open_v2(state->path, &connection, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK
        || sqlite3_exec(connection, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(connection);
        atomic_store(&state->stopped, 1);
        return NULL;
    }
    while (1) {
        while (sem_wait(&state->wake) != 0 && errno == EINTR) {}
        if (atomic_load(&state->stopped)) break;
        atomic_store(&state->pending, 0);
        // Pass after pass while the writer keeps adding frames, up to a bound.
        for (int pass = 0; pass < 8 && !atomic_load(&state->stopped); pass++) {
            if (atomic_load(&state->frames) < state->threshold) break;
            int cycle = atomic_load(&state->cycle);
            int log = 0, checkpointed = 0;
            if (sqlite3_wal_checkpoint_v2(connection, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &checkpointed) != SQLITE_OK) break;
            atomic_fetch_add(&state->background_passes, 1);
            // Frames counted in a log that has since started over mean nothing to the writer.
            if (atomic_load(&state->cycle) == cycle) {
                atomic_store(&state->copied, ((long long)cycle << 32) | (unsigned int)checkpointed);
            }
            if (checkpointed >= log - state->slack) break;
        }
    }
    sqlite3_close(connection);
    return NULL;
}

// After every commit of the writer, on its thread: `frames` is the size of the log.
static int cairn_wal_background_hook(void *argument, sqlite3 *db, const char *name, int frames) {
    struct cairn_wal_background *state = argument;
    if (frames < state->last_frames) atomic_fetch_add(&state->cycle, 1);
    state->last_frames = frames;
    atomic_store(&state->frames, frames);
    if (frames > atomic_load(&state->max_frames)) atomic_store(&state->max_frames, frames);
    if (frames < state->threshold) return SQLITE_OK;
    if (frames >= state->hard_limit || atomic_load(&state->stopped)) {
        cairn_wal_inline_checkpoint(state, db, name);
        return SQLITE_OK;
    }
    long long copied = atomic_load(&state->copied);
    if ((int)(copied >> 32) == atomic_load(&state->cycle) && (int)(copied & 0xffffffff) >= frames - state->slack) {
        cairn_wal_inline_checkpoint(state, db, name);
        return SQLITE_OK;
    }
    if (!state->thread_started) {
        state->thread_started = 1;
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attributes, cairn_wal_background_run, state) != 0) atomic_store(&state->stopped, 1);
        pthread_attr_destroy(&attributes);
    }
    if (atomic_exchange(&state->pending, 1) == 0) sem_post(&state->wake);
    return SQLITE_OK;
}

struct cairn_wal_background *cairn_wal_background_install(sqlite3 *writer, int threshold, int slack, int hard_limit) {
    const char *path = sqlite3_db_filename(writer, "main");
    if (path == NULL || path[0] == 0) return NULL;
    struct cairn_wal_background *state = calloc(1, sizeof *state);
    if (state == NULL) return NULL;
    state->path = strdup(path);
    if (state->path == NULL || sem_init(&state->wake, 0, 0) != 0) {
        free(state->path);
        free(state);
        return NULL;
    }
    state->threshold = threshold;
    state->slack = slack;
    state->hard_limit = hard_limit;
    // Replaces the automatic checkpoint, which is itself a WAL hook.
    sqlite3_wal_hook(writer, cairn_wal_background_hook, state);
    return state;
}

void cairn_wal_background_stop(struct cairn_wal_background *state) {
    if (state == NULL) return;
    atomic_store(&state->stopped, 1);
    sem_post(&state->wake);
}

void cairn_wal_background_counts(
    struct cairn_wal_background *state, long long *background_passes, long long *inline_checkpoints, int *max_frames, int *frames
) {
    *frames = atomic_load(&state->frames);
    *background_passes = atomic_load(&state->background_passes);
    *inline_checkpoints = atomic_load(&state->inline_checkpoints);
    *max_frames = atomic_load(&state->max_frames);
}
