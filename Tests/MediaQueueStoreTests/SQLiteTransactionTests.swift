import Foundation
import GRDB
import MediaQueueCore
import MediaQueueTestSupport
import Testing
@testable import MediaQueueSQLite

/// The SQLite store's own transactions (cached BEGIN IMMEDIATE and COMMIT): all of a body's
/// writes or none of them, and the connection ready for the next transaction either way.
@Suite struct SQLiteTransactionTests {
    struct Refusal: Error {}

    func makeStore() throws -> SQLiteJobStore {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent(TestEnvironment.uniqueName("store")).appendingPathComponent("mq.sqlite").path
        return try SQLiteJobStore(path: path)
    }

    func probes(_ store: SQLiteJobStore) async throws -> Int {
        try await store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM readiness_probe") ?? -1 }
    }

    @Test func aBodyThatThrowsWritesNothingAndTheNextTransactionCommits() async throws {
        let store = try makeStore()
        await #expect(throws: Refusal.self) {
            try await store.transaction { db in
                try db.execute(sql: "INSERT INTO readiness_probe (id, checked_at) VALUES (1, 1)")
                throw Refusal()
            }
        }
        #expect(try await probes(store) == 0)
        try await store.transaction { db in try db.execute(sql: "INSERT INTO readiness_probe (id, checked_at) VALUES (1, 2)") }
        #expect(try await probes(store) == 1)
    }

    @Test func aTransactionSQLiteRolledBackUnderTheBodyIsAnErrorNotACommit() async throws {
        let store = try makeStore()
        // What SQLite does on its own after a full disk or an I/O error, done here by hand.
        let error = await #expect(throws: DatabaseError.self) {
            try await store.transaction { db in
                try db.execute(sql: "INSERT INTO readiness_probe (id, checked_at) VALUES (1, 1)")
                try db.execute(sql: "ROLLBACK")
            }
        }
        #expect(error?.resultCode == .SQLITE_ABORT, "not COMMIT's 'no transaction is active'")
        #expect(try await probes(store) == 0)
        try await store.transaction { db in try db.execute(sql: "INSERT INTO readiness_probe (id, checked_at) VALUES (1, 2)") }
        #expect(try await probes(store) == 1)
    }
}
