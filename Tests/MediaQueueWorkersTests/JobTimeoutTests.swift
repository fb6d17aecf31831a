import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
import Testing
@testable import MediaQueueWorkers

/// The job time limit against work that can no longer stop.
@Suite struct JobTimeoutTests {
    /// Outputs being published when the limit passes are published all the same: the job is the
    /// success its outputs say, not a JobTimeout that left them in the bucket.
    @Test func workThatEndsWithItsResultAfterTheLimitIsTheJobsResult() async throws {
        let clock = ManualTimeSource()
        let publishing = AsyncStream<Void>.makeStream()
        let release = AsyncStream<Void>.makeStream()
        let run = Task {
            try await withJobTimeout(.seconds(1), on: clock) {
                publishing.continuation.yield()
                // Publishing: deaf to cancellation until it is done.
                for await _ in release.stream { break }
                return WorkResult(mediaResult: XMLTree("MediaResult"))
            }
        }
        for await _ in publishing.stream { break }
        await clock.sleepers(atLeast: 1)
        clock.advance(by: .seconds(1))
        release.continuation.yield()
        let result = try await run.value
        #expect(result.mediaResult?.name == "MediaResult")
    }

    @Test func workThatStopsWhenTheLimitPassesFailsWithJobTimeout() async throws {
        let clock = ManualTimeSource()
        let run = Task {
            try await withJobTimeout(.seconds(1), on: clock) {
                try await Task.sleep(for: .seconds(3600))
                return WorkResult()
            }
        }
        await clock.sleepers(atLeast: 1)
        clock.advance(by: .seconds(1))
        let failure = await workFailure { try await run.value }
        #expect(failure?.code == "JobTimeout")
    }
}
