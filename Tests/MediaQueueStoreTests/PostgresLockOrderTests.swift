import Logging
import MediaQueueCore
import MediaQueuePostgres
import MediaQueueTestSupport
import Synchronization
import Testing

/// Transactions on several nodes take queue rows in one order, so PostgreSQL never has to break a
/// deadlock between them (each break cost the loser a second, and five in a row its call).
@Suite struct PostgresLockOrderTests {
    static let now = Timestamp(seconds: 1_700_000_000)

    /// Node 1 ends jobs of queue B and claims in the same transaction; node 2 claims alone,
    /// which takes queue A (created first) and then B. Ending B's jobs held B while the claim
    /// waited for A, held by node 2 waiting for B.
    @Test func finishingThenClaimingBesideAPlainClaimNeverDeadlocks() async throws {
        let url = try await TestDatabase.create()
        let retries = RetryLog()
        let nodes = try (0..<2).map { _ in try PostgresJobStore(url: url, logger: retries.logger) }
        _ = try await nodes[0].ensureDefaultQueue(bucket: "a", template: template(maxConcurrent: 1_000))
        let queueB = try await nodes[0].ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 1_000))
        let total = 600
        _ = try await nodes[0].submit([Submission(idempotencyKey: nil, jobs: (0..<total).map { newJob(queueB, userData: "\($0)") })])
        let ended = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, node) in nodes.enumerated() {
                for lane in 0..<3 {
                    group.addTask {
                        let owner = "node-\(index)-\(lane)"
                        let claim = ClaimRequest(owner: owner, now: Self.now, leaseUntil: Self.now + .seconds(300), limit: 2)
                        var held = try await node.claim(claim).jobs
                        while ended.value < total {
                            guard !held.isEmpty else {
                                held = try await node.claim(claim).jobs
                                continue
                            }
                            let finished = held.map { job in
                                var done = job
                                done.state = .success
                                done.endTime = Self.now
                                return FinishedJob(job: done, outbox: [])
                            }
                            if index == 0 {
                                let (recorded, next) = try await node.finish(finished, owner: owner, thenClaim: claim)
                                ended.add(recorded.filter { $0 }.count)
                                held = next.jobs
                            } else {
                                ended.add(try await node.finish(finished, owner: owner).filter { $0 }.count)
                                held = []
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(ended.value == total)
        #expect(retries.deadlocks == 0, "transactions run again after PostgreSQL broke a deadlock")
    }
}

private final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
    func add(_ amount: Int) { count.add(amount, ordering: .relaxed) }
}

/// Counts the store's "transaction runs again" records for deadlocks (SQLSTATE 40P01).
private final class RetryLog: Sendable {
    private let count = Counter()
    var deadlocks: Int { count.value }

    var logger: Logger {
        Logger.observed("lock-order", level: .debug) { [count] event in
            if event.message.description == "transaction runs again", event.metadata?["sqlState"]?.description == "40P01" { count.add(1) }
        }
    }
}
