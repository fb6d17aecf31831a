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

extension PostgresLockOrderTests {
    /// A cancel took the job and then its queue; a pause or resume takes the queue and then its
    /// waiting jobs. Cancelling jobs one by one while another node pauses and resumes their queue
    /// made PostgreSQL break deadlocks between the two.
    @Test func cancellingBesideAQueuesPausesAndResumesNeverDeadlocks() async throws {
        let url = try await TestDatabase.create()
        let retries = RetryLog()
        let nodes = try (0..<2).map { _ in try PostgresJobStore(url: url, logger: retries.logger) }
        let queue = try await nodes[0].ensureDefaultQueue(bucket: "a", template: template(maxConcurrent: 1_000))
        let outcomes = try await nodes[0].submit((0..<200).map { Submission(idempotencyKey: nil, jobs: [newJob(queue, userData: "\($0)")]) })
        let ids = outcomes.flatMap { outcome -> [JobID] in
            guard case .created(let jobs) = outcome else { return [] }
            return jobs.map(\.id)
        }
        #expect(ids.count == 200)
        let cancelling = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { cancelling.add(1) }
                for id in ids { _ = try await nodes[0].cancel(id, now: Self.now) }
            }
            group.addTask {
                var paused = false
                while cancelling.value == 0 {
                    paused.toggle()
                    let state: MediaQueue.State = paused ? .paused : .active
                    _ = try await nodes[1].changeQueue(id: queue.id) { $0.state = state }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await nodes[0].jobs(JobQuery(limit: 1_000)).allSatisfy { $0.state == .cancel })
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
