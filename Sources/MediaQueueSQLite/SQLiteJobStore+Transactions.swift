import GRDB

/// The store's two ways into the database: write transactions and reads.
extension SQLiteJobStore {
    /// Runs `body` in an IMMEDIATE transaction: it takes the write lock up front, so two
    /// processes never deadlock upgrading a read to a write (SQLite would answer BUSY at once).
    func transaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.read(body)
    }
}

extension SQLiteJobStore {
    /// SQLite's own check of the file (`PRAGMA integrity_check`): `["ok"]`, or what is wrong.
    public func integrityCheck() async throws -> [String] {
        try await read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
    }
}
