#ifndef CSQLITE_TUNING_H
#define CSQLITE_TUNING_H

/* sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0), for Swift, which cannot call C variadic functions.
 * Returns SQLite's result code: SQLITE_MISUSE once SQLite has been initialised in this process. */
int mediaqueue_sqlite_disable_memory_statistics(void);

#endif
