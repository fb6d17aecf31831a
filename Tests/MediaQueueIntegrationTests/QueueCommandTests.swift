import Foundation
import MediaQueueTestSupport
import Testing

/// `mediaqueue queue create|update` on a real data folder: the limits and names the console and
/// the API accept, and a clear error, with nothing changed, for the rest.
@Suite(.timeLimit(.minutes(5))) struct QueueCommandTests {
    @Test func limitsOutsideTheirRangesAndBadNamesAreRefusedAndChangeNothing() async throws {
        let harness = try ServiceHarness()
        let created = try await harness.cli(["queue", "create", "fast", "--max-concurrent", "5", "--max-size", "50"])
        #expect(created.contains("<MaxConcurrent>5</MaxConcurrent>"))

        let tooMany = try await harness.runCLI(["queue", "create", "huge", "--max-concurrent", "20000"], allowFailure: true)
        #expect(tooMany.status != 0)
        #expect(tooMany.stderr.contains("MaxConcurrent: must be a whole number from 1 to 10000, not 20000"))
        let badName = try await harness.runCLI(["queue", "create", "no spaces"], allowFailure: true)
        #expect(badName.status != 0)
        #expect(badName.stderr.contains("Name: may hold letters, digits"))
        let emptied = try await harness.runCLI(["queue", "update", "fast", "--max-concurrent", "7", "--max-size", "0"], allowFailure: true)
        #expect(emptied.status != 0)
        #expect(emptied.stderr.contains("MaxSize: must be a whole number from 1 to 100000000, not 0"))

        let listing = try await harness.cli(["queue", "list"])
        #expect(!listing.contains("huge") && !listing.contains("no spaces"))
        #expect(listing.contains("<MaxSize>50</MaxSize><MaxConcurrent>5</MaxConcurrent>"))
    }
}
