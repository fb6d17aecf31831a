import Logging
import MediaQueueCore
import MediaQueueTestSupport
import PostgresNIO
import Testing
@testable import MediaQueuePostgres

/// A node gone silent inside a transaction does not hold the other nodes' claims for long.
@Suite struct PostgresSessionTests {
    static let now = Timestamp(seconds: 1_700_000_000)

    /// A connection (as a node whose network was cut would leave it) locks the queue and says
    /// nothing more: the server ends its session after `idle_in_transaction_session_timeout`
    /// (1 s here, from the URL's `options`), and another node's claim goes through.
    @Test func aTransactionLeftIdleEndsAndAnotherNodesClaimGoesThrough() async throws {
        let nodeURL = try await TestDatabase.create()
        // Only the silent session's idle transactions end after a second: a loaded machine may
        // stall the node's own that long.
        let url = nodeURL + "&options=-c%20idle_in_transaction_session_timeout%3D1000"
        let node = try PostgresJobStore(url: nodeURL, logger: Logger(label: "test-store"))
        let queue = try await node.ensureDefaultQueue(bucket: "b", template: template())
        _ = try await submitOne(node, newJob(queue))

        let silent = PostgresClient(configuration: try PostgresURL.parse(url, maximumConnections: 1))
        let pool = Task { await silent.run() }
        defer { pool.cancel() }
        let locked = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await silent.withConnection { connection in
                try await connection.query("BEGIN", logger: Logger(label: "silent"))
                try await connection.query("SELECT 1 FROM queues FOR UPDATE", logger: Logger(label: "silent"))
                locked.continuation.yield()
                // Idle in its transaction until the server ends the session.
                while !connection.isClosed { try await Task.sleep(for: .milliseconds(50)) }
            }
        }
        defer { holder.cancel() }
        for await _ in locked.stream { break }

        let request = ClaimRequest(owner: "other", now: Self.now, leaseUntil: Self.now + .seconds(300), limit: 1)
        let claimed = try await withThrowingTaskGroup(of: [Job].self) { group in
            group.addTask { try await node.claim(request).jobs }
            group.addTask {
                try await Task.sleep(for: hangBound)
                throw TimedOut(description: "the claim still waits for the silent session's lock")
            }
            defer { group.cancelAll() }
            return try await group.next() ?? []
        }
        #expect(claimed.count == 1, "the claim waited for the silent session's lock, then took the job")
        _ = try? await holder.value
    }

    /// A claim locks only the queues it may take jobs from: another bucket's empty queue, locked
    /// by a transaction that goes on (a pause, a long submission), does not hold it. Every bucket
    /// has its queue-1, and each claim locked them all.
    @Test(.timeLimit(.minutes(3))) func aClaimDoesNotWaitForAnEmptyQueueAnotherTransactionHolds() async throws {
        let url = try await TestDatabase.create()
        let node = try PostgresJobStore(url: url, logger: Logger(label: "test-store"))
        let empty = try await node.ensureDefaultQueue(bucket: "a", template: template())
        let busy = try await node.ensureDefaultQueue(bucket: "b", template: template())
        _ = try await submitOne(node, newJob(busy))

        let other = PostgresClient(configuration: try PostgresURL.parse(url, maximumConnections: 1))
        let pool = Task { await other.run() }
        defer { pool.cancel() }
        let locked = AsyncStream<Void>.makeStream()
        let claimed = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await other.withConnection { connection in
                try await connection.query("BEGIN", logger: Logger(label: "holder"))
                try await connection.query("SELECT 1 FROM queues WHERE id = \(empty.id.rawValue) FOR UPDATE", logger: Logger(label: "holder"))
                locked.continuation.yield()
                for await _ in claimed.stream { break }
                try await connection.query("ROLLBACK", logger: Logger(label: "holder"))
            }
        }
        for await _ in locked.stream { break }
        let request = ClaimRequest(owner: "n", now: Self.now, leaseUntil: Self.now + .seconds(300), limit: 5)
        let jobs = try await node.claim(request).jobs
        claimed.continuation.yield()
        try await holder.value
        #expect(jobs.map(\.queueID) == [busy.id])
    }

    /// The node's own session, ended by the server while the node stalled in the middle of a
    /// transaction: the call fails instead of waiting for ever on the closed connection.
    @Test func aCallWhoseSessionTheServerEndedMidTransactionFails() async throws {
        let url = try await TestDatabase.create() + "&options=-c%20idle_in_transaction_session_timeout%3D200"
        let client = PostgresClient(configuration: try PostgresURL.parse(url, maximumConnections: 1))
        let pool = Task { await client.run() }
        defer { pool.cancel() }
        await #expect(throws: ClosedConnection.self) {
            try await client.withConnection { connection in
                try await connection.run("BEGIN", logger: Logger(label: "stalled"))
                // Stalled: the server ends the session after 200 ms idle in its transaction.
                while !connection.isClosed { try await Task.sleep(for: .milliseconds(50)) }
                try await connection.run("SELECT 1", logger: Logger(label: "stalled"))
            }
        }
    }

    @Test func theURLsOptionsSetTheSessionsSettings() throws {
        let settings = try PostgresURL.sessionSettings("-c idle_in_transaction_session_timeout=5s -cstatement_timeout=0")
        #expect(settings.first { $0.0 == "idle_in_transaction_session_timeout" }?.1 == "5s")
        #expect(settings.first { $0.0 == "statement_timeout" }?.1 == "0")
        #expect(settings.first { $0.0 == "tcp_user_timeout" }?.1 == "30000")
        #expect(throws: CIError.self) { try PostgresURL.sessionSettings("idle=1") }
    }
}

/// A schema a newer version migrated is refused with a message that says so.
@Suite struct PostgresSchemaVersionTests {
    @Test func aDatabaseMigratedByANewerVersionIsRefused() async throws {
        let url = try await TestDatabase.create()
        _ = try await PostgresJobStore(url: url, logger: Logger(label: "test-store")).queues(bucket: "b")
        let client = PostgresClient(configuration: try PostgresURL.parse(url, maximumConnections: 1))
        let pool = Task { await client.run() }
        defer { pool.cancel() }
        try await client.query("INSERT INTO mediaqueue_schema (version) VALUES (999)", logger: Logger(label: "test"))
        let older = try PostgresJobStore(url: url, logger: Logger(label: "test-store"))
        await #expect {
            _ = try await older.queues(bucket: "b")
        } throws: { error in
            "\(error)".contains("migrated by a newer MediaQueue")
        }
    }
}
