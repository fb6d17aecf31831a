import Foundation
public import Logging
public import MediaQueueCore
public import PostgresNIO

/// The `JobStore` for several nodes: PostgreSQL is the queue of record that every
/// `mediaqueue serve` shares (`MEDIAQUEUE_DATABASE_URL`).
///
/// Claims serialise per queue on the queue's row (`FOR UPDATE`), so `MaxConcurrent` holds
/// across nodes; within a queue they take jobs with `FOR UPDATE SKIP LOCKED`, so a claim never
/// waits on a job that a finish or a cancel holds. Every method is one transaction at READ
/// COMMITTED; one that PostgreSQL aborts to break a deadlock, or that lost a race to insert the
/// same key, runs again.
public final class PostgresJobStore: JobStore {
    let client: PostgresClient
    /// Where the store asks how a transaction whose `COMMIT` answer was lost ended
    /// (`confirmCommitted`): a pool of its own, with no connections until then.
    let inquiries: PostgresClient
    let time: any TimeSource
    let logger: Logger
    /// How long a `COMMIT` whose answer was lost is waited for while the server says it carries
    /// it out (`confirmCommitted`).
    let commitInProgressPatience: Duration
    /// The queues' callback rules, parsed once per text.
    let queueRules = StoredRules()
    /// The connection pools run while the store exists (cancelled, they close their
    /// connections).
    private let running: [Task<Void, Never>]
    /// The schema migration, run once before the first query.
    private let migrated: Task<Void, any Error>
    /// What the pool last said when it could not connect, for the errors the store throws.
    private let connectFailures: ConnectFailureLog

    /// Connects to the database at `url` (`postgres://user:password@host:port/database`,
    /// optionally `?sslmode=disable|prefer|require`) and brings its schema up to date before the
    /// first query. `maximumConnections`: the pool's size. `commitInProgressPatience`: how long a
    /// `COMMIT` whose answer was lost is waited for while the server carries it out; keep it well
    /// under the jobs' claim lease, or jobs the transaction claimed come back with little of it left.
    public convenience init(
        url: String, time: any TimeSource = SystemTimeSource(), maximumConnections: Int = 8, commitInProgressPatience: Duration = .seconds(20),
        logger: Logger
    ) throws {
        try self.init(
            configuration: PostgresURL.parse(url, maximumConnections: maximumConnections), time: time,
            commitInProgressPatience: commitInProgressPatience, logger: logger
        )
    }

    public init(
        configuration: PostgresClient.Configuration, time: any TimeSource = SystemTimeSource(), commitInProgressPatience: Duration = .seconds(20),
        logger: Logger
    ) {
        self.commitInProgressPatience = commitInProgressPatience
        let connectFailures = ConnectFailureLog()
        self.connectFailures = connectFailures
        let client = PostgresClient(configuration: configuration, backgroundLogger: connectFailures.recording(logger))
        var inquiryConfiguration = configuration
        inquiryConfiguration.options.minimumConnections = 0
        inquiryConfiguration.options.maximumConnections = 2
        let inquiries = PostgresClient(configuration: inquiryConfiguration, backgroundLogger: logger)
        self.client = client
        self.inquiries = inquiries
        self.time = time
        self.logger = logger
        running = [Task { await client.run() }, Task { await inquiries.run() }]
        migrated = Task { try await Self.migrate(client, logger: logger) }
    }

    deinit {
        for pool in running { pool.cancel() }
    }

    /// Runs `body` in a transaction on one connection, again (up to 5 times) when PostgreSQL
    /// aborted it for a deadlock or a serialization failure, or it lost a race to insert a unique
    /// key (the next run reads what the winner wrote). When the answer to its `COMMIT` is lost,
    /// the server is asked how it ended (`confirmCommitted`).
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await connectFailures.readable { try await retryingTransaction(body) }
    }

    private func retryingTransaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await migrated.value
        var attempt = 1
        while true {
            do {
                let ending = try await Self.withOpenConnection(from: client) { connection -> TransactionEnding<T> in
                    try await connection.query("BEGIN", logger: logger)
                    let value: T
                    let open: OpenTransaction?
                    do {
                        value = try await body(connection)
                        open = try await Self.openTransaction(on: connection, logger: logger)
                        try connection.checkOpen()
                    } catch {
                        // Not on a connection that is gone: a query there can wait for ever
                        // instead of failing.
                        if !connection.isClosed { _ = try? await connection.query("ROLLBACK", logger: logger) }
                        throw error
                    }
                    // No ROLLBACK after a failed COMMIT: the transaction is over either way, and
                    // the connection is usually gone.
                    do {
                        try await connection.query("COMMIT", logger: logger)
                    } catch let error as PSQLError where error.serverInfo?[.severity] == "ERROR" {
                        throw error // The server answered: it rolled back. (FATAL or PANIC may come either way.)
                    } catch {
                        guard let open else { throw error }
                        return .unanswered(value, open, error)
                    }
                    return .committed(value)
                }
                switch ending {
                case .committed(let value):
                    return value
                case .unanswered(let value, let open, let failure):
                    try await confirmCommitted(open, failure: failure)
                    return value
                }
            } catch let error as PSQLError where attempt < 5 && Self.isWorthRetrying(error) {
                attempt += 1
                logger.debug("transaction runs again", metadata: ["sqlState": "\(error.serverInfo?[.sqlState] ?? "")"])
            }
        }
    }

    private enum TransactionEnding<T: Sendable>: Sendable {
        case committed(T)
        /// The `COMMIT` went out and failed without an answer from the server.
        case unanswered(T, OpenTransaction, any Error)
    }

    /// Runs `body` on one connection outside a transaction: each statement sees what was
    /// committed when it began.
    func read<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await connectFailures.readable {
            try await migrated.value
            return try await Self.withOpenConnection(from: client) { connection in try await body(connection) }
        }
    }

    /// `pool.withConnection` on a connection that is still open. The pool may lend one whose
    /// loss it has not yet taken in (just after a `COMMIT` whose reply was lost), and postgres-nio's
    /// query there waits for ever instead of failing; such a lease is given back for another.
    static func withOpenConnection<T: Sendable>(from pool: PostgresClient, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        for attempt in 0..<closedConnectionLeases {
            let result: T? = try await pool.withConnection { connection -> Optional<T> in
                guard !connection.isClosed else { return .none }
                return .some(try await body(connection))
            }
            if let result { return result }
            // The pool takes in a closed connection's loss a moment after it is given back, and
            // until then lends it again at once.
            try await Task.sleep(for: .milliseconds(5 * (attempt + 1)))
        }
        throw CIError(.internalError, "the database pool lent only closed connections")
    }

    /// How many closed connections in a row the pool may lend before a store call fails: more than
    /// it holds.
    static let closedConnectionLeases = 16

    /// Deadlock, serialization failure, unique violation.
    static func isWorthRetrying(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return ["40P01", "40001", "23505"].contains(state)
    }
}

/// `postgres://user:password@host:port/database?sslmode=…` as a client configuration.
enum PostgresURL {
    static func parse(_ url: String, maximumConnections: Int) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty, let user = components.user, !user.isEmpty
        else {
            throw CIError(.invalidArgument, "database URL must look like postgres://user:password@host:port/database")
        }
        let database = String(components.path.drop { $0 == "/" })
        let tls = try tls(mode: components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer",
                          rootCertificate: components.queryItems?.first { $0.name == "sslrootcert" }?.value)
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user,
            password: components.password, database: database.isEmpty ? nil : database, tls: tls
        )
        configuration.options.maximumConnections = maximumConnections
        configuration.options.additionalStartupParameters = try sessionSettings(components.queryItems?.first { $0.name == "options" }?.value)
        return configuration
    }

    /// libpq's `sslmode`: `prefer` (the default) and `require` encrypt without checking the
    /// server's certificate (servers commonly have a self-signed one), `verify-ca` checks that a
    /// trusted CA signed it, `verify-full` also that it names the host. Trusted: `sslrootcert`'s
    /// certificates when given (which makes `require` check the CA too, as in libpq), otherwise
    /// the system's.
    static func tls(mode: String, rootCertificate: String?) throws -> PostgresClient.Configuration.TLS {
        func configuration(_ verification: CertificateVerification) -> TLSConfiguration {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = verification
            if let rootCertificate { tls.trustRoots = .file(rootCertificate) }
            return tls
        }
        switch mode {
        case "disable": return .disable
        case "allow", "prefer": return .prefer(configuration(.none))
        case "require": return .require(configuration(rootCertificate == nil ? .none : .noHostnameVerification))
        case "verify-ca": return .require(configuration(.noHostnameVerification))
        case "verify-full": return .require(configuration(.fullVerification))
        default: throw CIError(.invalidArgument, "database URL: sslmode must be disable, allow, prefer, require, verify-ca or verify-full, not '\(mode)'")
        }
    }

    /// The settings each session starts with: `defaultSettings`, then those of the URL's
    /// `options` parameter (libpq's form, `-c name=value` each).
    static func sessionSettings(_ options: String?) throws -> [(String, String)] {
        var settings = defaultSettings
        var words = (options ?? "").split(whereSeparator: \.isWhitespace).map(String.init)[...]
        while let word = words.popFirst() {
            let setting = word == "-c" ? words.popFirst() ?? "" : word.hasPrefix("-c") ? String(word.dropFirst(2)) : ""
            guard let equals = setting.firstIndex(of: "="), equals != setting.startIndex else {
                throw CIError(.invalidArgument, "database URL: options must be '-c name=value' settings, not '\(options ?? "")'")
            }
            let name = String(setting[..<equals])
            settings.removeAll { $0.0 == name }
            settings.append((name, String(setting[setting.index(after: equals)...])))
        }
        return settings
    }

    /// A node that stops answering in the middle of a transaction (its power or its network
    /// lost, the process stalled) holds that transaction's locks, queue rows included, until the
    /// server gives up on its session; every node's claims wait for them. Without these the
    /// server waits for an idle transaction for ever and notices a silent peer after its
    /// kernel's keepalive (about two hours); with them, within half a minute. A node whose
    /// session was ended so finds its connection closed (`checkOpen`) and its call fails.
    static let defaultSettings: [(String, String)] = [
        ("idle_in_transaction_session_timeout", "30000"),
        ("tcp_keepalives_idle", "10"), ("tcp_keepalives_interval", "5"), ("tcp_keepalives_count", "3"),
        ("tcp_user_timeout", "30000"),
    ]
}
