import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import Testing

/// Several nodes on one database claim and finish at once: `MaxConcurrent` holds across them,
/// jobs start in level-then-submission order, and no job is claimed twice while its lease holds.
@Suite struct SharedStoreContractTests {
    static let now = Timestamp(seconds: 1_700_000_000)

    static func request(_ owner: String, limit: Int) -> ClaimRequest {
        ClaimRequest(owner: owner, now: now, leaseUntil: now + .seconds(300), limit: limit)
    }

    static func done(_ job: Job) -> FinishedJob {
        var ended = job
        ended.state = .success
        ended.endTime = now
        return FinishedJob(job: ended, outbox: [])
    }

    /// With `MaxConcurrent` 1 a job can start only once the one before it has ended, so the
    /// order in which the nodes see their claims is the order the store chose.
    @Test(arguments: StoreKind.allCases)
    func nodesClaimingAtOnceStartJobsInLevelThenSubmissionOrder(_ kind: StoreKind) async throws {
        let nodes = try await kind.makeShared(count: 3)
        let queue = try await nodes[0].ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 1))
        var submitted: [Job] = []
        for index in 0..<60 {
            submitted.append(try await submitOne(nodes[index % 3], newJob(queue, level: [0, 1, 2][index % 3], userData: "\(index)")))
        }
        let started = StartLog()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, node) in nodes.enumerated() {
                group.addTask {
                    let owner = "node-\(index)"
                    var idleClaims = 0
                    // Each node claims, ends what it got with the next claim, and stops once
                    // every job has started.
                    var held = try await node.claim(Self.request(owner, limit: 1)).jobs
                    while await started.count < 60, idleClaims < 100_000 {
                        if held.isEmpty {
                            idleClaims += 1
                            await Task.yield()
                            held = try await node.claim(Self.request(owner, limit: 1)).jobs
                            continue
                        }
                        await started.record(held)
                        held = try await node.finish(held.map(Self.done), owner: owner, thenClaim: Self.request(owner, limit: 1)).claim.jobs
                    }
                    #expect(held.isEmpty)
                }
            }
            try await group.waitForAll()
        }
        let expected = submitted.sorted { ($0.jobLevel, -$0.sequence) > ($1.jobLevel, -$1.sequence) }.map(\.userData)
        #expect(await started.jobs.map(\.userData) == expected)
        #expect(await started.jobs.allSatisfy { $0.attempts == 1 })
    }

    /// All nodes claim as much as they may at once, again and again: never more than
    /// `MaxConcurrent` jobs run, and each job is claimed by one node.
    @Test(arguments: StoreKind.allCases)
    func nodesClaimingAtOnceNeverRunMoreThanMaxConcurrent(_ kind: StoreKind) async throws {
        let nodes = try await kind.makeShared(count: 3)
        let queue = try await nodes[0].ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 3))
        _ = try await nodes[0].submit([Submission(idempotencyKey: nil, jobs: (0..<30).map { newJob(queue, userData: "\($0)") })])
        let started = StartLog()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, node) in nodes.enumerated() {
                group.addTask {
                    let owner = "node-\(index)"
                    var rounds = 0
                    while await started.count < 30, rounds < 100_000 {
                        rounds += 1
                        let claimed = try await node.claim(Self.request(owner, limit: 3)).jobs
                        guard !claimed.isEmpty else {
                            await Task.yield()
                            continue
                        }
                        await started.record(claimed)
                        let running = try await node.jobs(JobQuery(queueID: queue.id, states: [.running], limit: 100))
                        await started.sample(running.count)
                        #expect(try await node.finish(claimed.map(Self.done), owner: owner).allSatisfy { $0 })
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(await started.count == 30)
        #expect(Set(await started.jobs.map(\.id)).count == 30)
        #expect(await started.mostRunning <= 3)
        #expect(try await nodes[0].jobs(JobQuery(queueID: queue.id, states: [.success], limit: 100)).count == 30)
    }
}

/// What the nodes of a test started, in the order they saw it.
private actor StartLog {
    private(set) var jobs: [Job] = []
    private(set) var mostRunning = 0
    var count: Int { jobs.count }

    func record(_ started: [Job]) {
        jobs.append(contentsOf: started)
    }

    func sample(_ running: Int) {
        mostRunning = max(mostRunning, running)
    }
}
