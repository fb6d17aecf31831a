import CSQLiteTuning
import Foundation
import GRDB
public import MediaQueueCore
import MediaQueueXML

/// The embedded `JobStore`: one SQLite file in WAL mode, shared safely by several processes on
/// one machine (SQLite's file locks serialise writers; readers never block).
///
/// Durability: `synchronous = NORMAL` in WAL mode keeps every committed transaction across a
/// process crash (what an AMQP ack after commit relies on); only an OS crash or power loss may
/// roll back the last transactions.
public final class SQLiteJobStore: JobStore {
    let pool: DatabasePool
    let time: any TimeSource
    /// Jobs submitted here and not claimed yet (see `RecentJobs`).
    let recentJobs: RecentJobs
    /// Writes the write-ahead log out as it grows, so checkpoints do not stall the writer.
    let walFlusher: WALFlusher
    /// The queues' callback rules, parsed once per text.
    let queueRules = StoredRules()

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// `recentJobsLimit`: how many submitted, unclaimed jobs are kept in memory so that their
    /// claim does not read them back (more are read from the file).
    public init(path: String, time: any TimeSource = SystemTimeSource(), recentJobsLimit: Int = 20_000) throws {
        _ = Self.processConfiguration
        recentJobs = RecentJobs(limit: recentJobsLimit)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "MediaQueue"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // 16 MiB of page cache per connection instead of 2 MiB: the job indexes of a large
            // backlog stay cached, which halves the page reads (pread) of a busy dispatcher.
            try db.execute(sql: "PRAGMA cache_size = -16384")
            // A checkpoint runs in the commit that crosses this many WAL pages, and every write
            // queued behind the writer waits for it: its copy and its syncs are the slowest
            // jobs' latency. Small ones (1,024 pages, about SQLite's default) keep each wait
            // short; larger ones copy and sync less in all, which only a store writing flat out
            // notices (Docs/performance.md).
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 1024")
            // Temporary b-trees (sorts, `IN` lists) in memory: on disk, SQLite created, wrote and
            // unlinked a file in /var/tmp for many transactions.
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        pool = try Self.withOpeningLock(databasePath: path) {
            let pool = try DatabasePool(path: path, configuration: configuration)
            // A file a newer MediaQueue migrated has columns and tables this one would not keep
            // up (a counter it does not update, a table it does not write): refused, not used.
            if try pool.read({ try Self.migrator.hasBeenSuperseded($0) }) {
                throw CIError(.internalError, "\(path) was migrated by a newer MediaQueue than this one; run that version, or restore a backup taken before it")
            }
            try Self.migrator.migrate(pool)
            return pool
        }
        self.time = time
        walFlusher = WALFlusher(databasePath: path)
    }

    /// Runs `body` holding an exclusive lock on a file beside the database, so that processes
    /// opening one data folder at once (a relay and a dispatcher started together, or after an
    /// upgrade) open and migrate it one after the other. Together, one of them failed: GRDB's
    /// migrator reads which migrations are applied before it takes SQLite's write lock, so the
    /// second applied them again ("duplicate column name"), and switching a new file to WAL
    /// does not wait for SQLite's busy timeout ("database is locked").
    static func withOpeningLock<T>(databasePath: String, _ body: () throws -> T) throws -> T {
        let lockPath = databasePath + "-open.lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw CIError(.internalError, "cannot open \(lockPath): errno \(errno)") }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw CIError(.internalError, "cannot lock \(lockPath): errno \(errno)") }
        }
        return try body()
    }

    deinit {
        walFlusher.stop()
    }

    /// SQLite's process-wide settings, made once, before the first connection opens.
    ///
    /// Memory statistics off: with them, every allocation and free SQLite makes takes a global
    /// mutex to count it, and the hot path's statements make several each. Nothing here reads
    /// the statistics (`sqlite3_memory_used`, heap limits). Too late if SQLite was already used
    /// in this process (a test that opened a database first): it then keeps counting, no harm.
    private static let processConfiguration: Void = {
        _ = mediaqueue_sqlite_disable_memory_statistics()
    }()

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE queues (
                    ordinal INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    bucket TEXT NOT NULL,
                    name TEXT NOT NULL,
                    state TEXT NOT NULL,
                    max_concurrent INTEGER NOT NULL,
                    max_size INTEGER NOT NULL,
                    category TEXT NOT NULL,
                    notify_config TEXT NOT NULL,
                    create_time INTEGER NOT NULL,
                    update_time INTEGER NOT NULL,
                    UNIQUE (bucket, name)
                );
                CREATE TABLE jobs (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    bucket TEXT NOT NULL,
                    queue_id TEXT NOT NULL,
                    tag TEXT NOT NULL,
                    state TEXT NOT NULL,
                    job_level INTEGER NOT NULL,
                    input TEXT NOT NULL,
                    operation TEXT NOT NULL,
                    callback TEXT NOT NULL,
                    creation_time INTEGER NOT NULL,
                    start_time INTEGER,
                    end_time INTEGER,
                    progress INTEGER NOT NULL DEFAULT 0,
                    code TEXT NOT NULL,
                    message TEXT NOT NULL,
                    media_result TEXT,
                    media_info TEXT,
                    lease_owner TEXT,
                    lease_expires INTEGER,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    cancel_requested INTEGER NOT NULL DEFAULT 0
                );
                -- The dispatcher's order: per queue and state, highest level first, then submission.
                CREATE INDEX jobs_dispatch ON jobs (queue_id, state, job_level DESC, seq);
                CREATE INDEX jobs_bucket ON jobs (bucket, seq);
                CREATE INDEX jobs_lease ON jobs (lease_owner) WHERE lease_owner IS NOT NULL;
                CREATE TABLE idempotency_keys (
                    key TEXT PRIMARY KEY,
                    job_ids TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
                CREATE TABLE outbox (
                    id TEXT PRIMARY KEY,
                    job_id TEXT NOT NULL,
                    bucket TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    url TEXT,
                    mq_mode TEXT,
                    mq_name TEXT,
                    mq_region TEXT,
                    routing_key TEXT NOT NULL,
                    body BLOB NOT NULL,
                    content_type TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    status TEXT NOT NULL DEFAULT 'pending',
                    last_error TEXT,
                    delivered_at INTEGER
                );
                CREATE INDEX outbox_due ON outbox (status, kind, next_attempt);
                """)
        }
        migrator.registerMigration("v2") { db in
            try migrateV2(db)
        }
        migrator.registerMigration("v3") { db in
            // The relays read due deliveries `ORDER BY next_attempt, created_at LIMIT n`; without
            // created_at in the index SQLite sorted every pending row for each read, so draining a
            // backlog cost time quadratic in its size.
            try db.execute(sql: """
                DROP INDEX outbox_due;
                CREATE INDEX outbox_due ON outbox (status, kind, next_attempt, created_at);
                """)
        }
        migrator.registerMigration("v4") { db in
            // Only the dispatcher's look for cancel requests of its own running jobs needs jobs by
            // lease owner. Indexing every leased job cost two index writes per job (claim and
            // finish); indexing only jobs with a cancel request costs nothing on that path.
            try db.execute(sql: """
                DROP INDEX jobs_lease;
                CREATE INDEX jobs_cancel ON jobs (lease_owner) WHERE cancel_requested = 1;
                """)
        }
        migrator.registerMigration("v5") { db in
            try migrateV5(db)
        }
        migrator.registerMigration("v6") { db in
            // One row that readiness probes rewrite: a write that fails when the disk is full.
            try db.execute(sql: "CREATE TABLE readiness_probe (id INTEGER PRIMARY KEY, checked_at INTEGER NOT NULL)")
        }
        migrator.registerMigration("v7") { db in
            try migrateV7(db)
        }
        migrator.registerMigration("v8") { db in
            try migrateV8(db)
        }
        migrator.registerMigration("v9") { db in
            // The headers an upload came with, for the runs its arrival starts (CosHeader.stored).
            try db.execute(sql: "ALTER TABLE arrivals ADD COLUMN cos_headers TEXT NOT NULL DEFAULT ''")
        }
        migrator.registerMigration("v10") { db in
            // Keyed by the key itself: a rowid table kept a third b-tree (the key's own index)
            // that every submission with a key wrote to.
            try db.execute(sql: """
                CREATE TABLE idempotency_keys_v10 (
                    key TEXT PRIMARY KEY,
                    job_ids TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                INSERT INTO idempotency_keys_v10 (key, job_ids, created_at) SELECT key, job_ids, created_at FROM idempotency_keys;
                DROP TABLE idempotency_keys;
                ALTER TABLE idempotency_keys_v10 RENAME TO idempotency_keys;
                CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
                """)
        }
        return migrator
    }
}
