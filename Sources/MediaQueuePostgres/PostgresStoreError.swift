import Logging
import PostgresNIO
import Synchronization

/// A PostgreSQL failure as the store reports it to its callers, their logs and the CLI.
/// postgres-nio describes every `PSQLError` with the same placeholder, so that queries and data
/// never reach an end user by accident, and a pool that cannot connect fails its requests with
/// only "circuit breaker tripped". An operator needs what the server said (a wrong password, a
/// missing database) or why the connection failed: this keeps those, and never a query.
public struct PostgresStoreError: Error, CustomStringConvertible {
    public let description: String
    /// The server's SQLSTATE, when the server answered.
    public let sqlState: String?

    init(_ error: PSQLError) {
        sqlState = error.serverInfo?[.sqlState]
        if let info = error.serverInfo, let message = info[.message] {
            description = "PostgreSQL: \(message) (SQLSTATE \(info[.sqlState] ?? "?"))"
        } else if let underlying = error.underlying {
            description = "PostgreSQL \(error.code): \(underlying)"
        } else {
            description = "PostgreSQL: \(error.code)"
        }
    }

    init(cannotConnect lastFailure: String?) {
        sqlState = nil
        description = "PostgreSQL: cannot connect; the last attempt failed with \(lastFailure ?? "an error the pool did not report")"
    }
}

/// Keeps the last connection failure the pool reported. The pool logs each one (with the
/// server's answer) on its background logger and fails waiting requests without it; the store
/// hands this logger to the pool in place of its own, which still gets every record.
final class ConnectFailureLog: Sendable {
    private let last = Mutex<String?>(nil)

    var lastFailure: String? { last.withLock { $0 } }

    /// `logger`, with the pool's connection failures also recorded here.
    func recording(_ logger: Logger) -> Logger {
        let inner = logger.handler
        // The recorder sees info records (the failures) whatever the inner handler's level.
        return Logger(label: logger.label) { _ in Recorder(inner: inner, log: self) }
    }

    /// Runs `work`, reporting a `PSQLError` it throws, or the pool giving up on connecting, as a
    /// `PostgresStoreError`.
    func readable<T>(_ work: () async throws -> T) async throws -> T {
        do {
            return try await work()
        } catch let error as PSQLError {
            throw PostgresStoreError(error)
        } catch where "\(error)".contains("connectionCreationCircuitBreakerTripped") {
            throw PostgresStoreError(cannotConnect: lastFailure)
        }
    }

    private struct Recorder: LogHandler {
        var inner: any LogHandler
        let log: ConnectFailureLog

        var metadata: Logger.Metadata {
            get { inner.metadata }
            set { inner.metadata = newValue }
        }

        var logLevel: Logger.Level {
            get { min(inner.logLevel, .info) }
            set { inner.logLevel = newValue }
        }

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { inner[metadataKey: key] }
            set { inner[metadataKey: key] = newValue }
        }

        func log(event: LogEvent) {
            if event.message.description == "Connection creation failed", let error = event.metadata?["psql_error"] {
                log.last.withLock { $0 = "\(error)" }
            }
            if event.level >= inner.logLevel { inner.log(event: event) }
        }
    }
}
