import GRDB
import GRDBSQLite

/// Runs a cached statement with its values bound through SQLite's C API.
///
/// Why: GRDB's `StatementArguments` turn every value into an existential and then a
/// `DatabaseValue` before binding it. For the statements that run for every job (its insert,
/// its end, its callback delivery) that boxing cost more than the binding itself: about 3 % of
/// the service's CPU. GRDB documents `Statement.sqliteStatement` for use with the C API; the
/// statement is only used here, inside GRDB's transaction, and never finalized.
///
/// Bind every parameter, in order, then `run`.
struct DirectStatement {
    private let statement: Statement
    private let handle: OpaquePointer
    private var index: Int32 = 0
    /// The first failed bind (too big, out of memory): `run` reports it instead of writing.
    private var bindFailure: Int32 = SQLITE_OK

    init(_ statement: Statement) {
        self.statement = statement
        self.handle = statement.sqliteStatement
        // Clears a previous run (its result code was reported then).
        sqlite3_reset(handle)
    }

    mutating func bind(_ value: String) {
        var value = value
        value.withUTF8 { bindText($0) }
    }

    /// Binds UTF-8 bytes as text: an XML document written for a column, without making a
    /// `String` of it first (which validates and copies it again).
    mutating func bind(text value: [UInt8]?) {
        guard let value else { return bindNull() }
        value.withUnsafeBufferPointer { bindText($0) }
    }

    mutating func bind(_ value: String?) {
        if let value { bind(value) } else { bindNull() }
    }

    mutating func bind(_ value: Int64) {
        index += 1
        note(sqlite3_bind_int64(handle, index, value))
    }

    mutating func bind(_ value: Int64?) {
        if let value { bind(value) } else { bindNull() }
    }

    mutating func bind(_ value: Int) {
        bind(Int64(value))
    }

    mutating func bind(_ value: [UInt8]) {
        index += 1
        let code = value.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress {
                sqlite3_bind_blob64(handle, index, base, sqlite3_uint64(bytes.count), transient)
            } else {
                sqlite3_bind_zeroblob(handle, index, 0)
            }
        }
        note(code)
    }

    private mutating func bindText(_ bytes: UnsafeBufferPointer<UInt8>) {
        index += 1
        let code = bytes.withMemoryRebound(to: CChar.self) { text in
            guard let base = text.baseAddress else { return sqlite3_bind_text64(handle, index, "", 0, transient, UInt8(SQLITE_UTF8)) }
            return sqlite3_bind_text64(handle, index, base, sqlite3_uint64(text.count), transient, UInt8(SQLITE_UTF8))
        }
        note(code)
    }

    private mutating func bindNull() {
        index += 1
        note(sqlite3_bind_null(handle, index))
    }

    private mutating func note(_ code: Int32) {
        if code != SQLITE_OK && bindFailure == SQLITE_OK { bindFailure = code }
    }

    /// Executes the statement; throws SQLite's error as GRDB would.
    func run(_ db: Database) throws {
        _ = try runReturningFirst(db) { _ in () }
    }

    /// Executes the statement and reads its first row, if any, with `read` (a `SELECT`, or a
    /// write with `RETURNING`; the statement still runs to its end).
    func runReturningFirst<T>(_ db: Database, _ read: (Columns) -> T) throws -> T? {
        precondition(index == sqlite3_bind_parameter_count(handle), "every parameter must be bound: \(statement.sql)")
        if bindFailure != SQLITE_OK {
            // What is still bound may be the previous row's: clear it rather than leave it.
            sqlite3_clear_bindings(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: bindFailure), message: "could not bind a value", sql: statement.sql)
        }
        var first: T?
        while true {
            switch sqlite3_step(handle) {
            case SQLITE_DONE:
                return first
            case SQLITE_ROW:
                if first == nil { first = read(Columns(handle: handle)) }
            case let code:
                let message = db.sqliteConnection.map { String(cString: sqlite3_errmsg($0)) }
                sqlite3_reset(handle)
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
            }
        }
    }

    /// The current row's values, by column position.
    struct Columns {
        fileprivate let handle: OpaquePointer

        func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
        func int(_ column: Int32) -> Int { Int(int64(column)) }
        func bool(_ column: Int32) -> Bool { int64(column) != 0 }
        func optionalInt64(_ column: Int32) -> Int64? {
            sqlite3_column_type(handle, column) == SQLITE_NULL ? nil : int64(column)
        }
    }
}

/// SQLite copies the value during the bind call (`SQLITE_TRANSIENT`, a macro Swift cannot import).
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

