import Logging
import MediaQueueCore
import MediaQueueTestSupport
import PostgresNIO
import Testing
@testable import MediaQueuePostgres

/// The questions a store asks after a `COMMIT` whose answer was lost go through a pool of two
/// connections of their own.
@Suite struct PostgresInquiryTests {
    /// Questions that went unanswered within their limit (here, queries that sleep far longer)
    /// give their connections back: a later question is answered. Left lent, the two connections
    /// would be lost to every later lost commit.
    @Test func questionsLeftUnansweredDoNotTakeThePoolsConnections() async throws {
        let store = try PostgresJobStore(url: try await TestDatabase.create(), logger: Logger(label: "test-store"))
        let logger = Logger(label: "test-inquiry")
        for _ in 0..<3 {
            // The limit's error, or the query's when its connection is closed under it.
            await #expect(throws: (any Error).self) {
                try await store.ask(within: .milliseconds(200)) { connection in
                    try await connection.query("SELECT pg_sleep(30)", logger: logger)
                }
            }
        }
        let answer = try await store.ask(within: .seconds(20)) { connection in
            try await connection.value("SELECT 1", as: Int.self, logger: logger)
        }
        #expect(answer == 1)
    }
}
