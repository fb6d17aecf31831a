import MediaQueueCore
import MediaQueueXML
import Testing
@testable import MediaQueueSQLite

/// The claim cache's bounds: at most `limit` jobs, and bookkeeping that does not grow with the
/// number of jobs that passed through it.
@Suite struct RecentJobsTests {
    static func job(_ sequence: Int64) -> Job {
        Job(
            bucket: "b", queueID: QueueID(rawValue: "p1"), tag: "Noop", sequence: sequence, input: XMLTree("Input"),
            operation: XMLTree("Operation"), creationTime: Timestamp(seconds: 0)
        )
    }

    @Test func jobsClaimedOneByOneLeaveNoBookkeepingBehind() {
        let recent = RecentJobs(limit: 1000)
        for sequence in Int64(1)...50_000 {
            recent.insert([Self.job(sequence)])
            #expect(recent.take([sequence])[sequence]?.sequence == sequence)
        }
        #expect(recent.count == 0)
        #expect(recent.orderLength <= 2048)
    }

    @Test func theOldestGoFirstBeyondTheLimit() {
        let recent = RecentJobs(limit: 100)
        recent.insert((1...250).map { Self.job(Int64($0)) })
        #expect(recent.count == 100)
        #expect(recent.take([1, 150, 151, 250]).keys.sorted() == [151, 250])
    }
}
