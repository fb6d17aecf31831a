import Foundation
import Logging
import PostgresNIO

/// Databases on the test PostgreSQL server (`scripts/postgres-node.sh`, started by the test
/// command): a new, empty one for each store under test.
public enum TestDatabase {
    /// The server's `mediaqueue` database; new databases are made through it.
    public static var serverURL: String {
        TestEnvironment.value("MEDIAQUEUE_TEST_DATABASE_URL") ?? "postgres://mediaqueue:mediaqueue@127.0.0.1:5433/mediaqueue"
    }

    /// The test server's self-signed certificate (`scripts/postgres-node.sh`), its own CA.
    public static var serverCertificate: String? { TestEnvironment.value("MEDIAQUEUE_TEST_DATABASE_CA") }

    /// Creates a database of its own for one test; returns its URL.
    public static func create() async throws -> String {
        guard var components = URLComponents(string: serverURL) else {
            throw TimedOut(description: "MEDIAQUEUE_TEST_DATABASE_URL is not a postgres:// URL: \(serverURL)")
        }
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try await execute(["CREATE DATABASE \(name)"], on: serverURL)
        components.path = "/" + name
        components.queryItems = [URLQueryItem(name: "sslmode", value: "disable")]
        return components.string ?? serverURL
    }

    /// Runs `statements` in order on the database at `url`, as the user the URL names.
    public static func execute(_ statements: [String], on url: String) async throws {
        guard let components = URLComponents(string: url), let host = components.host, let user = components.user else {
            throw TimedOut(description: "not a postgres:// URL: \(url)")
        }
        let configuration = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: String(components.path.dropFirst()), tls: .disable
        )
        let logger = Logger(label: "test-database")
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            for statement in statements {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}
