import Foundation
import GRDB
import MediaQueueCore
import Testing
@testable import MediaQueueSQLite

/// A store written by an earlier version opens with its data intact.
@Suite struct SQLiteMigrationTests {
    @Test func idempotencyKeysStoredBeforeTheKeyedTableStillFindTheirJobs() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mq-migration-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("store.sqlite").path
        do {
            let old = try DatabaseQueue(path: path)
            try SQLiteJobStore.migrator.migrate(old, upTo: "v9")
            try await old.write { db in
                try db.execute(sql: "INSERT INTO idempotency_keys (key, job_ids, created_at) VALUES ('msg-1', 'j1,j2', 1)")
            }
        }
        let store = try SQLiteJobStore(path: path)
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        let outcomes = try await store.submit([
            Submission(idempotencyKey: "msg-1", jobs: [newJob(queue)]),
            Submission(idempotencyKey: "msg-2", jobs: [newJob(queue)]),
        ])
        guard case .duplicate(let ids) = outcomes[0], case .created = outcomes[1] else {
            Issue.record("unexpected outcomes \(outcomes)")
            return
        }
        #expect(ids == [JobID(rawValue: "j1"), JobID(rawValue: "j2")])
        #expect(try await store.jobs(JobQuery(limit: 10)).count == 1)
    }
}
