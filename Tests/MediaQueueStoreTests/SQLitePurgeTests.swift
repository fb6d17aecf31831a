import Foundation
import GRDB
import MediaQueueCore
import Testing
@testable import MediaQueueSQLite

/// The SQLite store forgets old idempotency keys in batches, each its own transaction, so that
/// an hour of keys at a high rate does not hold the only write lock for seconds.
@Suite struct SQLitePurgeTests {
    @Test func oldIdempotencyKeysGoBatchAfterBatchAndNewOnesStay() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mq-purge-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteJobStore(path: folder.appendingPathComponent("store.sqlite").path)
        let old = SQLiteJobStore.idempotencyPurgeBatch * 2 + 17
        try await store.pool.write { db in
            try db.execute(
                sql: """
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                    INSERT INTO idempotency_keys (key, job_ids, created_at) SELECT 'old-' || i, 'j' || i, 1000 + i FROM n
                    """,
                arguments: [old]
            )
            try db.execute(sql: "INSERT INTO idempotency_keys (key, job_ids, created_at) VALUES ('new', 'jn', 1000000)")
        }
        try await store.purgeIdempotencyKeys(before: Timestamp(milliseconds: 500_000))
        let left = try await store.pool.read { db in try String.fetchAll(db, sql: "SELECT key FROM idempotency_keys") }
        #expect(left == ["new"])
    }
}
