import Foundation
import Logging
import MediaQueueTestSupport
import PostgresNIO
import Testing
@testable import MediaQueuePostgres

/// `sslmode` means what it means to libpq, against the test server's TLS with its self-signed
/// certificate for localhost and 127.0.0.1.
@Suite struct PostgresTLSTests {
    /// Whether a session opened with `parameters` is encrypted; throws when it cannot be opened
    /// (the pool's first failed attempt: it would try again for ever).
    func encrypted(host: String = "127.0.0.1", _ parameters: String) async throws -> Bool {
        var components = try #require(URLComponents(string: TestDatabase.serverURL))
        components.host = host
        components.query = parameters
        let failures = AsyncStream<String>.makeStream()
        let client = PostgresClient(
            configuration: try PostgresURL.parse(try #require(components.string), maximumConnections: 1),
            backgroundLogger: Logger.observed("tls-test", level: .info) { event in
                if event.message.description == "Connection creation failed" { failures.continuation.yield("\(event.metadata ?? [:])") }
            }
        )
        let pool = Task { await client.run() }
        defer { pool.cancel() }
        return try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                let row = try await client.withConnection { connection in
                    try await connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: Logger(label: "tls-test"))
                        .collect().first
                }
                return try #require(row).decode(Bool.self)
            }
            group.addTask {
                for await failure in failures.stream { throw ConnectFailed(reason: failure) }
                throw CancellationError()
            }
            defer { group.cancelAll() }
            return try #require(try await group.next())
        }
    }

    @Test func preferAndRequireEncryptWithAServersSelfSignedCertificate() async throws {
        #expect(try await encrypted(""), "prefer, the default")
        #expect(try await encrypted("sslmode=require"))
        #expect(try await !encrypted("sslmode=disable"))
    }

    @Test func verifyCAAndVerifyFullCheckTheCertificateAgainstTheRootGiven() async throws {
        let root = try #require(TestDatabase.serverCertificate, "MEDIAQUEUE_TEST_DATABASE_CA names the test server's certificate")
        #expect(try await encrypted("sslmode=verify-ca&sslrootcert=\(root)"))
        #expect(try await encrypted(host: "localhost", "sslmode=verify-full&sslrootcert=\(root)"))
        let notTrusted = await #expect(throws: ConnectFailed.self, "the system's CAs did not sign it") {
            try await encrypted("sslmode=verify-full")
        }
        #expect(notTrusted?.reason.contains("CERTIFICATE_VERIFY_FAILED") == true, "\(notTrusted?.reason ?? "")")
        let otherCA = await #expect(throws: ConnectFailed.self, "another CA than the one given") {
            try await encrypted("sslmode=verify-ca&sslrootcert=/etc/ssl/certs/ca-certificates.crt")
        }
        #expect(otherCA?.reason.contains("CERTIFICATE_VERIFY_FAILED") == true, "\(otherCA?.reason ?? "")")
    }
}

/// The pool's report of a failed connection attempt (its logged metadata, with the TLS error).
struct ConnectFailed: Error {
    let reason: String
}
