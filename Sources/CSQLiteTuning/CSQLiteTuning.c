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
