import GRDB

/// The store's two ways into the database: write transactions and reads.
extension SQLiteJobStore {
    /// Runs `body` in an IMMEDIATE transaction: it takes the write lock up front, so two
    /// processes never deadlock upgrading a read to a write (SQLite would answer BUSY at once).
    ///
    /// BEGIN and COMMIT are the connection's cached statements rather than GRDB's
    /// `inTransaction`, which builds and compiles both texts anew for every transaction.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in
            try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
            do {
                let result = try body(db)
                // An error SQLite answers by rolling back itself (a full disk, an I/O error)
                // leaves no transaction to commit; say so rather than "no transaction is active".
                guard db.isInsideTransaction else {
                    throw DatabaseError(resultCode: .SQLITE_ABORT, message: "the transaction was rolled back by SQLite")
                }
                try db.cachedStatement(sql: "COMMIT").execute()
                return result
            } catch {
                if db.isInsideTransaction { try? db.rollback() }
                throw error
            }
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
