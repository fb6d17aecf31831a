import Foundation
import GRDB
import MediaQueueCore
import Synchronization
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

    /// A file a newer version migrated is refused with a message that says so, rather than used
    /// by code that does not keep up what the newer schema holds.
    @Test func aStoreMigratedByANewerVersionIsRefused() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mq-migration-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("store.sqlite").path
        do {
            _ = try SQLiteJobStore(path: path)
            let newer = try DatabaseQueue(path: path)
            try newer.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v999')") }
        }
        #expect {
            _ = try SQLiteJobStore(path: path)
        } throws: { error in
            "\(error)".contains("migrated by a newer MediaQueue")
        }
    }

    /// Two processes opening a new data folder at once (`serve --role relay` and `serve --role
    /// intake,dispatch` started together): one of them used to fail to start, applying the
    /// migrations the other had just applied.
    @Test func storesOpenedAtOnceOnOneFileMigrateItOnce() throws {
        for _ in 0..<10 {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mq-migration-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            let path = folder.appendingPathComponent("store.sqlite").path
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                do {
                    _ = try SQLiteJobStore(path: path)
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 } == [])
            let applied = try DatabaseQueue(path: path).read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
            #expect(applied.count == Set(applied).count && applied.contains("v1"))
        }
    }
}
