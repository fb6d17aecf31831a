import Foundation
import MediaQueueCore
@testable import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// Claims made inside the transactions that store or end jobs (`submit(_:thenClaim:)`,
/// `finish(_:owner:thenClaim:)`) choose exactly as a claim of their own, and say whether they
/// left jobs waiting.
@Suite struct ClaimContractTests {
    static let now = Timestamp(seconds: 1_700_000_000)

    static func request(_ owner: String = "n", limit: Int) -> ClaimRequest {
        ClaimRequest(owner: owner, now: now, leaseUntil: now + .seconds(30), limit: limit)
    }

    @Test(arguments: StoreKind.allCases)
    func aClaimSaysWhetherItLeftJobsWaiting(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 2))
        #expect(try await store.claim(Self.request(limit: 5)) == ClaimResult(jobs: [], moreWaiting: false))
        for index in 0..<3 { _ = try await submitOne(store, newJob(queue, userData: "\(index)")) }

        // This claim's limit stops it: the others still wait.
        let first = try await store.claim(Self.request(limit: 1))
        #expect(first.jobs.map(\.userData) == ["0"])
        #expect(first.moreWaiting)
        // The queue's MaxConcurrent (2) stops the next one with a job still waiting.
        let second = try await store.claim(Self.request(limit: 5))
        #expect(second.jobs.map(\.userData) == ["1"])
        #expect(second.moreWaiting)
        #expect(try await store.claim(Self.request(limit: 5)).moreWaiting)

        for job in first.jobs + second.jobs {
            var done = job
            done.state = .success
            #expect(try await store.finish(done, owner: "n", outbox: []))
        }
        let last = try await store.claim(Self.request(limit: 5))
        #expect(last.jobs.map(\.userData) == ["2"])
        #expect(!last.moreWaiting)
    }

    /// The intake claims exactly the jobs it stores: such a claim must not report a backlog, or
    /// every intake batch would make the dispatcher claim again for nothing.
    @Test(arguments: StoreKind.allCases)
    func aClaimThatTakesExactlyWhatWaitsLeavesNothingWaiting(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 10))
        let (_, claim) = try await store.submit(
            [Submission(idempotencyKey: "a", jobs: [newJob(queue, userData: "a"), newJob(queue, userData: "b")])],
            thenClaim: Self.request("intake", limit: 2)
        )
        #expect(claim.jobs.map(\.userData) == ["a", "b"])
        #expect(!claim.moreWaiting)
    }

    @Test(arguments: StoreKind.allCases)
    func aClaimWithTheSubmissionTakesWaitingJobsInPriorityOrderWithinMaxConcurrent(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 3))
        _ = try await submitOne(store, newJob(queue, level: 0, userData: "old-0"))
        _ = try await submitOne(store, newJob(queue, level: 1, userData: "old-1"))

        let (outcomes, claim) = try await store.submit(
            [
                Submission(idempotencyKey: "a", jobs: [newJob(queue, level: 2, userData: "new-2")]),
                Submission(idempotencyKey: "b", jobs: [newJob(queue, level: 1, userData: "new-1")]),
            ],
            thenClaim: Self.request("intake", limit: 10)
        )
        #expect(outcomes.count == 2)
        // Level first, then submission; three at most (MaxConcurrent), the rest waits.
        #expect(claim.jobs.map(\.userData) == ["new-2", "old-1", "new-1"])
        #expect(claim.moreWaiting)
        #expect(claim.jobs.allSatisfy { $0.state == .running && $0.lease?.owner == "intake" && $0.attempts == 1 && $0.startTime == Self.now })
        for job in claim.jobs {
            let stored = try #require(try await store.job(id: job.id))
            #expect(stored.state == .running)
            #expect(stored.input == job.input && stored.operation == job.operation)
            // Stored as claimed, whether it was waiting already or arrived with the claim.
            #expect(stored.lease == job.lease && stored.attempts == 1 && stored.startTime == Self.now)
            #expect(stored.sequence == job.sequence && job.sequence > 0)
        }
        // Submission order is kept in the sequence numbers: the older jobs, then the new ones.
        let created = outcomes.flatMap { outcome -> [Job] in
            guard case .created(let jobs) = outcome else { return [] }
            return jobs
        }
        #expect(created.map(\.userData) == ["new-2", "new-1"])
        #expect(created.map(\.state) == [.submitted, .submitted])
        #expect(created[0].sequence < created[1].sequence)
        #expect(claim.jobs.first { $0.userData == "new-2" }?.sequence == created[0].sequence)
        // The job left waiting is claimed later in full.
        let rest = try await store.claim(Self.request(limit: 10))
        #expect(rest.jobs.isEmpty)
        var done = claim.jobs[0]
        done.state = .success
        #expect(try await store.finish(done, owner: "intake", outbox: []))
        let later = try await store.claim(Self.request(limit: 10))
        #expect(later.jobs.map(\.userData) == ["old-0"])
        #expect(later.jobs.first?.operation.text("JobLevel") == "0")
    }

    /// Jobs arriving with the claim wait like stored ones when their queue is full, and the claim
    /// says so; they are claimed later from where they were stored.
    @Test(arguments: StoreKind.allCases)
    func aClaimWithTheSubmissionReportsArrivingJobsLeftWaitingByAFullQueue(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 1))
        let (_, first) = try await store.submit([Submission(idempotencyKey: nil, jobs: [newJob(queue, userData: "a")])], thenClaim: Self.request(limit: 5))
        #expect(first.jobs.map(\.userData) == ["a"])
        #expect(!first.moreWaiting)

        let (outcomes, second) = try await store.submit(
            [Submission(idempotencyKey: nil, jobs: [newJob(queue, level: 2, userData: "b")])], thenClaim: Self.request(limit: 5)
        )
        #expect(second.jobs.isEmpty)
        #expect(second.moreWaiting)
        guard case .created(let waiting) = outcomes.first else {
            Issue.record("not created: \(outcomes)")
            return
        }
        let stored = try #require(try await store.job(id: waiting[0].id))
        #expect(stored.state == .submitted && stored.lease == nil && stored.attempts == 0 && stored.startTime == nil)

        var done = first.jobs[0]
        done.state = .success
        let (_, next) = try await store.finish([FinishedJob(job: done, outbox: [])], owner: "n", thenClaim: Self.request(limit: 5))
        #expect(next.jobs.map(\.userData) == ["b"])
        #expect(next.jobs.first?.sequence == waiting[0].sequence)
        #expect(!next.moreWaiting)
    }

    /// A job whose owner died (lease expired) goes before a job of its level arriving with the
    /// claim, and the claim's limit is shared by the queues in their order.
    @Test(arguments: StoreKind.allCases)
    func aClaimWithTheSubmissionPutsOrphansFirstAndSharesItsLimitAcrossQueues(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 1))
        let orphan = try await submitOne(store, newJob(queue, userData: "orphan"))
        let dead = ClaimRequest(owner: "dead", now: Self.now - .seconds(60), leaseUntil: Self.now - .seconds(30), limit: 1)
        #expect(try await store.claim(dead).jobs.map(\.id) == [orphan.id])
        let other = MediaQueue(bucket: "b", name: "other", maxConcurrent: 5, createTime: Self.now)
        try await store.createQueue(other)

        let (_, claim) = try await store.submit(
            [Submission(idempotencyKey: nil, jobs: [newJob(queue, userData: "new"), newJob(other, userData: "elsewhere")])],
            thenClaim: Self.request("n", limit: 1)
        )
        #expect(claim.jobs.map(\.userData) == ["orphan"])
        #expect(claim.jobs.first?.attempts == 2)
        #expect(claim.moreWaiting)

        // The next claim: the first queue is full (the orphan runs again), the other's job goes.
        let next = try await store.claim(Self.request(limit: 5))
        #expect(next.jobs.map(\.userData) == ["elsewhere"])
        #expect(next.moreWaiting)
    }

    /// A batch whose submissions end every way (a known key, a paused queue, a missing queue,
    /// created): the claim takes the later of two arriving jobs by level, and each job's row,
    /// outcome and claimed copy agree on its sequence number and state.
    @Test(arguments: StoreKind.allCases)
    func aClaimWithAMixedBatchTakesTheRightArrivingJob(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 1))
        let paused = MediaQueue(bucket: "b", name: "paused", state: .paused, createTime: Self.now)
        try await store.createQueue(paused)
        let missing = MediaQueue(bucket: "b", name: "missing", createTime: Self.now)
        let known = try await submitOne(store, newJob(queue, userData: "known"), key: "known")

        let (outcomes, claim) = try await store.submit(
            [
                Submission(idempotencyKey: "known", jobs: [newJob(queue, userData: "again")]),
                Submission(idempotencyKey: nil, jobs: [newJob(paused, userData: "held")]),
                Submission(idempotencyKey: "lost", jobs: [newJob(missing, userData: "nowhere")]),
                Submission(idempotencyKey: nil, jobs: [newJob(queue, level: 0, userData: "low")]),
                Submission(idempotencyKey: nil, jobs: [newJob(queue, level: 2, userData: "high")]),
            ],
            thenClaim: Self.request(limit: 5)
        )
        #expect(outcomes.count == 5)
        #expect(outcomes[0] == .duplicate([known.id]))
        guard case .created(let held) = outcomes[1], case .refused(let refusal) = outcomes[2],
              case .created(let low) = outcomes[3], case .created(let high) = outcomes[4]
        else {
            Issue.record("unexpected outcomes: \(outcomes)")
            return
        }
        #expect(refusal.code == .noSuchQueue)
        // One slot: the level-2 job, though it came after a waiting and an arriving level-0 job.
        #expect(claim.jobs.map(\.userData) == ["high"])
        #expect(claim.moreWaiting)
        #expect(claim.jobs.first?.sequence == high[0].sequence)
        #expect(held[0].sequence < low[0].sequence && low[0].sequence < high[0].sequence)
        #expect(try await store.job(id: high[0].id)?.state == .running)
        #expect(try await store.job(id: high[0].id)?.sequence == high[0].sequence)
        #expect(try await store.job(id: low[0].id)?.state == .submitted)
        #expect(try await store.job(id: held[0].id)?.state == .pause)
        #expect(try await store.job(id: known.id)?.state == .submitted)
        if let sqlite = store as? SQLiteJobStore {
            // The jobs left waiting are kept in memory for their claim; the claimed one is not.
            #expect(sqlite.recentJobs.count == 3)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aClaimWithTheSubmissionLeavesJobsOfAPausedQueueAlone(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        var queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        queue.state = .paused
        try await store.updateQueue(queue)
        let (outcomes, claim) = try await store.submit([Submission(idempotencyKey: nil, jobs: [newJob(queue)])], thenClaim: Self.request(limit: 5))
        guard case .created(let jobs) = outcomes.first else {
            Issue.record("not created: \(outcomes)")
            return
        }
        #expect(jobs.map(\.state) == [.pause])
        #expect(claim == ClaimResult(jobs: [], moreWaiting: false))
    }

    @Test(arguments: StoreKind.allCases)
    func aClaimWithTheFinishTakesTheSlotsTheFinishedJobsFree(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 1))
        _ = try await submitOne(store, newJob(queue, level: 0, userData: "first"))
        _ = try await submitOne(store, newJob(queue, level: 0, userData: "second"))
        _ = try await submitOne(store, newJob(queue, level: 1, userData: "urgent"))
        var running = try await store.claim(Self.request(limit: 5)).jobs
        #expect(running.map(\.userData) == ["urgent"])

        running[0].state = .success
        let (recorded, claim) = try await store.finish(
            [FinishedJob(job: running[0], outbox: [])], owner: "n", thenClaim: Self.request(limit: 5)
        )
        #expect(recorded == [true])
        // The queue's one slot went free in this transaction and the next job took it.
        #expect(claim.jobs.map(\.userData) == ["first"])
        #expect(claim.moreWaiting)
        #expect(try await store.job(id: running[0].id)?.state == .success)

        // A job whose lease was lost is not recorded, and its slot stays taken.
        var stale = running[0]
        stale.state = .failed
        let (again, none) = try await store.finish([FinishedJob(job: stale, outbox: [])], owner: "n", thenClaim: Self.request(limit: 5))
        #expect(again == [false])
        #expect(none.jobs.isEmpty)
    }

    /// The per-job statements bind their values through SQLite's C API: a failing one still
    /// rolls back its whole transaction, and the store goes on working.
    @Test func aFailedWriteRollsBackItsBatchAndTheStoreGoesOn() async throws {
        let store = try await StoreKind.sqlite.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        let first = try await submitOne(store, newJob(queue, userData: "first"))
        let fresh = newJob(queue, userData: "fresh")
        // The same job id again violates the unique index, after `fresh` was inserted.
        await #expect(throws: (any Error).self) {
            try await store.submit([Submission(idempotencyKey: "k", jobs: [fresh, first])])
        }
        #expect(try await store.job(id: fresh.id) == nil, "the batch is rolled back")
        let again = try await submitOne(store, newJob(queue, userData: "after"), key: "k")
        #expect(try await store.job(id: again.id)?.userData == "after")
        #expect(try await store.jobs(JobQuery(limit: 10)).count == 2)
    }
}

/// Each store writes its write-ahead log out from a thread of its own; a store that goes away
/// must take its thread with it, or a process that opens stores (tests, tools) leaks threads.
@Suite struct WALFlusherTests {
    @Test func aClosedStoreEndsItsFlusherThread() async throws {
        var store: SQLiteJobStore? = try SQLiteJobStore(
            path: FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("store")).appendingPathComponent("mq.sqlite").path
        )
        _ = try await store?.ensureDefaultQueue(bucket: "b", template: template())
        let flusher = try #require(store?.walFlusher)
        #expect(!flusher.hasEnded)
        store = nil
        // The thread notices at its next interval.
        try await eventually("the flusher thread to end") { flusher.hasEnded }
    }
}
