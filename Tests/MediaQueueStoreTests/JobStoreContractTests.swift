import Foundation
import Logging
import MediaQueueCore
import MediaQueuePostgres
import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// The behaviour every `JobStore` driver must share, run against the memory store, a real
/// SQLite file and a real PostgreSQL database (a new one for each store).
enum StoreKind: String, CaseIterable, CustomTestStringConvertible {
    case memory, sqlite, postgres
    var testDescription: String { rawValue }

    func make(time: any TimeSource = SystemTimeSource()) async throws -> any JobStore {
        switch self {
        case .memory: return MemoryJobStore(time: time)
        case .sqlite:
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent(TestEnvironment.uniqueName("store")).appendingPathComponent("mq.sqlite").path
            return try SQLiteJobStore(path: path, time: time)
        case .postgres:
            return try PostgresJobStore(url: try await TestDatabase.create(), time: time, logger: Logger(label: "test-store"))
        }
    }

    /// `count` stores on one database, as several nodes (or processes) open it; the memory store
    /// is one store shared.
    func makeShared(count: Int) async throws -> [any JobStore] {
        switch self {
        case .memory:
            return Array(repeating: MemoryJobStore(), count: count)
        case .sqlite:
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent(TestEnvironment.uniqueName("store")).appendingPathComponent("mq.sqlite").path
            return try (0..<count).map { _ in try SQLiteJobStore(path: path) }
        case .postgres:
            let url = try await TestDatabase.create()
            return try (0..<count).map { _ in try PostgresJobStore(url: url, logger: Logger(label: "test-store")) }
        }
    }
}

func template(_ now: Timestamp = Timestamp(seconds: 1_700_000_000), maxConcurrent: Int = 10, maxSize: Int = 10_000) -> MediaQueue {
    MediaQueue(bucket: "", name: "", maxConcurrent: maxConcurrent, maxSize: maxSize, createTime: now)
}

func newJob(_ queue: MediaQueue, level: Int = 0, userData: String = "", callback: CallbackOverride = CallbackOverride()) -> Job {
    Job(
        bucket: queue.bucket, queueID: queue.id, tag: "Snapshot", jobLevel: level,
        input: XMLTree("Input", children: [XMLTree("Object", text: "in/a.mp4")]),
        operation: XMLTree("Operation", children: [XMLTree("JobLevel", text: String(level)), XMLTree("UserData", text: userData)]),
        callback: callback, creationTime: Timestamp(seconds: 1_700_000_000)
    )
}

func submitOne(_ store: any JobStore, _ job: Job, key: String? = nil) async throws -> Job {
    let outcomes = try await store.submit([Submission(idempotencyKey: key, jobs: [job])])
    guard case .created(let jobs) = outcomes.first else { throw TimedOut(description: "not created: \(outcomes)") }
    return jobs[0]
}

@Suite struct JobStoreContractTests {
    @Test(arguments: StoreKind.allCases)
    func everyBucketGetsOneDefaultQueue(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let first = try await store.ensureDefaultQueue(bucket: "b-1", template: template())
        let again = try await store.ensureDefaultQueue(bucket: "b-1", template: template())
        let other = try await store.ensureDefaultQueue(bucket: "b-2", template: template())
        #expect(first.id == again.id)
        #expect(first.name == "queue-1")
        #expect(QueueID.looksLikeID(first.id.rawValue))
        #expect(other.id != first.id)
        #expect(try await store.queues(bucket: "b-1").map(\.id) == [first.id])
    }

    /// A rename to the name of the bucket's other queue is refused as a create would be (it was
    /// InternalError on SQLite and PostgreSQL, the unique key's failure, and allowed in memory);
    /// another bucket's names and the queue's own are free.
    @Test(arguments: StoreKind.allCases)
    func aQueueIsNotRenamedToTheNameOfItsBucketsOtherQueue(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let first = try await store.ensureDefaultQueue(bucket: "b-1", template: template())
        var second = MediaQueue(bucket: "b-1", name: "second", createTime: first.createTime)
        try await store.createQueue(second)
        _ = try await store.ensureDefaultQueue(bucket: "b-2", template: template())
        second.name = first.name
        await #expect(throws: CIError.queueNameTaken(first.name)) { try await store.updateQueue(second) }
        second.name = "second"
        second.maxConcurrent = 3
        try await store.updateQueue(second)
        #expect(try await store.queue(id: second.id)?.maxConcurrent == 3, "its own name is kept")
        var moved = try #require(try await store.queues(bucket: "b-2").first)
        moved.name = "second"
        try await store.updateQueue(moved)
        #expect(try await store.queues(bucket: "b-1").map(\.name).sorted() == ["queue-1", "second"])
    }

    @Test func sqliteKeepsQueuesAndJobsAcrossReopening() async throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent(TestEnvironment.uniqueName("store")).appendingPathComponent("mq.sqlite").path
        var store: SQLiteJobStore? = try SQLiteJobStore(path: path)
        let queue = try await store!.ensureDefaultQueue(bucket: "b", template: template())
        let job = try await submitOne(store!, newJob(queue, userData: "kept"))
        store = nil
        let reopened = try SQLiteJobStore(path: path)
        #expect(try await reopened.ensureDefaultQueue(bucket: "b", template: template()).id == queue.id)
        let loaded = try #require(try await reopened.job(id: job.id))
        #expect(loaded.userData == "kept")
        #expect(loaded.state == .submitted)
        #expect(loaded.input == job.input)
    }

    @Test(arguments: StoreKind.allCases)
    func aRepeatedIdempotencyKeyCreatesNoSecondJob(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        let first = try await store.submit([Submission(idempotencyKey: "msg-1", jobs: [newJob(queue), newJob(queue)])])
        let again = try await store.submit([Submission(idempotencyKey: "msg-1", jobs: [newJob(queue)])])
        guard case .created(let jobs) = first[0], case .duplicate(let ids) = again[0] else {
            Issue.record("unexpected outcomes \(first) \(again)")
            return
        }
        #expect(ids == jobs.map(\.id))
        #expect(try await store.jobs(JobQuery(limit: 100)).count == 2)
        #expect(try await store.jobIDs(idempotencyKey: "msg-1") == jobs.map(\.id))
        #expect(try await store.jobIDs(idempotencyKey: "msg-2") == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func aKeyRepeatedWithinOneBatchCreatesOneJobAndKnownKeysAmongNewOnesAreFound(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        let earlier = try await submitOne(store, newJob(queue), key: "old")
        let outcomes = try await store.submit([
            Submission(idempotencyKey: "new", jobs: [newJob(queue)]),
            Submission(idempotencyKey: "old", jobs: [newJob(queue)]),
            Submission(idempotencyKey: "new", jobs: [newJob(queue)]),
            Submission(idempotencyKey: nil, jobs: [newJob(queue)]),
        ])
        guard outcomes.count == 4, case .created(let created) = outcomes[0], case .duplicate(let old) = outcomes[1],
              case .duplicate(let repeated) = outcomes[2], case .created = outcomes[3]
        else {
            Issue.record("unexpected outcomes \(outcomes)")
            return
        }
        #expect(old == [earlier.id])
        #expect(repeated == created.map(\.id))
        #expect(try await store.jobs(JobQuery(limit: 100)).count == 3)
    }

    @Test(arguments: StoreKind.allCases)
    func claimsFollowLevelThenSubmissionAndRespectMaxConcurrent(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        var queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 2))
        queue.maxConcurrent = 2
        let levels = [0, 2, 1, 2, 0, 1]
        var submitted: [Job] = []
        for (index, level) in levels.enumerated() {
            submitted.append(try await submitOne(store, newJob(queue, level: level, userData: "\(index)")))
        }
        let now = Timestamp(seconds: 1_700_000_000)
        let firstTwo = try await store.claimJobs(owner: "n1", now: now, leaseUntil: now + .seconds(30), limit: 10)
        #expect(firstTwo.map(\.userData) == ["1", "3"])
        #expect(try await store.claimJobs(owner: "n1", now: now, leaseUntil: now + .seconds(30), limit: 10).isEmpty)
        for job in firstTwo {
            var done = job
            done.state = .success
            done.endTime = now
            #expect(try await store.finish(done, owner: "n1", outbox: []))
        }
        let next = try await store.claimJobs(owner: "n1", now: now, leaseUntil: now + .seconds(30), limit: 10)
        #expect(next.map(\.userData) == ["2", "5"])
        #expect(next.allSatisfy { $0.state == .running && $0.lease?.owner == "n1" && $0.startTime == now })
    }

    @Test(arguments: StoreKind.allCases)
    func pausingHoldsJobsAndEnablingReturnsThemInOrder(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        var queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        let early = try await submitOne(store, newJob(queue, userData: "early"))
        queue.state = .paused
        try await store.updateQueue(queue)
        #expect(try await store.job(id: early.id)?.state == .pause)
        let late = try await submitOne(store, newJob(queue, userData: "late"))
        #expect(late.state == .pause)
        let now = Timestamp(seconds: 1_700_000_000)
        #expect(try await store.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(30), limit: 10).isEmpty)
        queue.state = .active
        try await store.updateQueue(queue)
        #expect(try await store.queue(id: queue.id)?.state == .active)
        let claimed = try await store.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(30), limit: 10)
        #expect(claimed.map(\.userData) == ["early", "late"])
    }

    /// A change is made to the queue as stored, not to a copy read before: one operator's pause
    /// and another's new limit (or rule) both stay. Written whole from copies read before each
    /// other's change, the second write undid the pause and put its jobs back to Submitted.
    @Test(arguments: StoreKind.allCases)
    func aChangeOfOneSettingKeepsTheOthersChangedMeanwhile(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        let waiting = try await submitOne(store, newJob(queue, userData: "waiting"))
        _ = try await store.changeQueue(id: queue.id) { $0.state = .paused }
        let changed = try await store.changeQueue(id: queue.id) { queue in
            #expect(queue.state == .paused, "the change sees the pause")
            queue.maxConcurrent = 7
            queue.notifyConfig = .topic("after")
        }
        #expect(changed.state == .paused && changed.maxConcurrent == 7)
        let stored = try #require(try await store.queue(id: queue.id))
        #expect(stored.state == .paused)
        #expect(stored.maxConcurrent == 7)
        #expect(stored.notifyConfig == .topic("after"))
        #expect(try await store.job(id: waiting.id)?.state == .pause, "its jobs stay paused")

        // A refused change changes nothing.
        await #expect(throws: CIError.self) {
            try await store.changeQueue(id: queue.id) { queue throws(CIError) in
                queue.state = .active
                throw CIError(.invalidArgument, "refused")
            }
        }
        #expect(try await store.queue(id: queue.id)?.state == .paused)
        await #expect(throws: CIError.self) { try await store.changeQueue(id: QueueID(rawValue: "no-such-queue")) { _ in } }

        // Changes at once: each sees the others' (a copy read outside the write would lose some).
        let before = try #require(try await store.queue(id: queue.id)).maxConcurrent
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 { group.addTask { _ = try await store.changeQueue(id: queue.id) { $0.maxConcurrent += 1 } } }
            try await group.waitForAll()
        }
        #expect(try await store.queue(id: queue.id)?.maxConcurrent == before + 20)
    }

    @Test(arguments: StoreKind.allCases)
    func aChangedCallbackRuleIsReadAsChangedHoweverOftenTheOldOneWasRead(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        var queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        let other = try await store.ensureDefaultQueue(bucket: "c", template: template())
        queue.notifyConfig = .topic("first")
        try await store.updateQueue(queue)
        for _ in 0..<3 { #expect(try await store.queue(id: queue.id)?.notifyConfig == .topic("first")) }
        queue.notifyConfig = .topic("second", format: .json)
        try await store.updateQueue(queue)
        #expect(try await store.queue(id: queue.id)?.notifyConfig == .topic("second", format: .json))
        #expect(try await store.queue(id: other.id)?.notifyConfig == template().notifyConfig, "another queue keeps its own rule")
        queue.notifyConfig = .topic("first")
        try await store.updateQueue(queue)
        #expect(try await store.queues(bucket: "b").map(\.notifyConfig) == [.topic("first")])

        // The same text to Swift's `==`, other bytes: what is sent must be the new bytes.
        for url in ["https://example.com/caf\u{E9}", "https://example.com/cafe\u{301}"] {
            queue.notifyConfig = NotifyConfig(isOn: true, events: [.taskFinish], type: .url, url: url)
            try await store.updateQueue(queue)
            let read = try await store.queue(id: queue.id)?.notifyConfig.url ?? ""
            #expect(Array(read.utf8) == Array(url.utf8))
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aFullQueueRefusesTheWholeSubmission(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxSize: 2))
        _ = try await submitOne(store, newJob(queue))
        let outcome = try await store.submit([Submission(idempotencyKey: "k", jobs: [newJob(queue), newJob(queue)])])
        guard case .refused(let error) = outcome[0] else {
            Issue.record("expected a refusal, got \(outcome)")
            return
        }
        #expect(error.code == .queueFull)
        #expect(try await store.jobs(JobQuery(limit: 10)).count == 1)
        // The refused key is not remembered: a retry after space frees up is accepted.
        _ = try await submitOne(store, newJob(queue), key: "k")
    }

    /// Room in a full queue comes back exactly as jobs end: a finished or a cancelled job frees
    /// its place; a refused finish (a lost lease), a claim, a release and a pause free none.
    @Test(arguments: StoreKind.allCases)
    func endedJobsFreeTheirPlaceInAFullQueueAndNothingElseDoes(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        var queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 3, maxSize: 3))
        let now = Timestamp(seconds: 1_700_000_000)
        func fits() async throws -> Bool {
            let outcome = try await store.submit([Submission(idempotencyKey: nil, jobs: [newJob(queue)])])
            if case .created = outcome[0] { return true }
            return false
        }
        _ = try await store.submit([Submission(idempotencyKey: nil, jobs: [newJob(queue), newJob(queue), newJob(queue)])])
        #expect(try await !fits())
        let claimed = try await store.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(30), limit: 2)
        try await store.release([claimed[1].id], owner: "n")
        #expect(try await !fits(), "claims and releases free nothing")
        var ended = claimed[0]
        ended.state = .success
        #expect(try await !store.finish(ended, owner: "someone else", outbox: []), "a finish without the lease is refused")
        #expect(try await !fits())
        #expect(try await store.finish(ended, owner: "n", outbox: []))
        #expect(try await fits(), "a finished job frees its place")
        #expect(try await !fits())
        queue.state = .paused
        try await store.updateQueue(queue)
        #expect(try await !fits(), "paused jobs still count")
        let waiting = try await store.jobs(JobQuery(queueID: queue.id, states: [.pause], limit: 10))
        guard case .cancelled = try await store.cancel(waiting[0].id, now: now) else {
            Issue.record("the paused job was not cancelled")
            return
        }
        #expect(try await fits(), "a cancelled job frees its place")
    }

    @Test(arguments: StoreKind.allCases)
    func aJobWhoseLeaseExpiredIsClaimedAgainAndTheOldOwnerCannotFinishIt(_ kind: StoreKind) async throws {
        let time = ManualTimeSource()
        let store = try await kind.make(time: time)
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 1))
        let job = try await submitOne(store, newJob(queue))
        let start = time.now
        let claimed = try await store.claimJobs(owner: "dead-node", now: start, leaseUntil: start + .seconds(30), limit: 1)
        #expect(claimed.map(\.id) == [job.id])
        #expect(try await store.claimJobs(owner: "n2", now: start + .seconds(10), leaseUntil: start + .seconds(40), limit: 1).isEmpty)
        let later = start + .seconds(31)
        let reclaimed = try await store.claimJobs(owner: "n2", now: later, leaseUntil: later + .seconds(30), limit: 1)
        #expect(reclaimed.map(\.id) == [job.id])
        #expect(reclaimed.first?.attempts == 2)
        var finished = reclaimed[0]
        finished.state = .success
        #expect(try await store.finish(finished, owner: "dead-node", outbox: []) == false)
        #expect(try await store.renewLeases([job.id], owner: "dead-node", until: later + .seconds(60)) == [job.id])
        #expect(try await store.renewLeases([job.id], owner: "n2", until: later + .seconds(60)).isEmpty)
        #expect(try await store.finish(finished, owner: "n2", outbox: []))
        #expect(try await store.job(id: job.id)?.state == .success)
    }

    /// A node that claims its own running job again (its lease ended before a renewal came) takes
    /// back the attempt that claim counted; nobody else can, and a job it no longer holds keeps
    /// its count.
    @Test(arguments: StoreKind.allCases)
    func anAttemptCountedByAClaimOfAJobStillRunningThereIsTakenBackByItsOwnerOnly(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 2))
        let job = try await submitOne(store, newJob(queue))
        let other = try await submitOne(store, newJob(queue))
        let start = Timestamp(seconds: 1_700_000_000)
        _ = try await store.claimJobs(owner: "n", now: start, leaseUntil: start + .seconds(30), limit: 2)
        let later = start + .seconds(31)
        let again = try await store.claimJobs(owner: "n", now: later, leaseUntil: later + .seconds(30), limit: 2)
        #expect(Set(again.map(\.id)) == [job.id, other.id])
        #expect(again.map(\.attempts) == [2, 2])

        try await store.uncountAttempts([job.id], owner: "someone else")
        #expect(try await store.job(id: job.id)?.attempts == 2, "only the lease's owner takes an attempt back")
        try await store.uncountAttempts([job.id], owner: "n")
        #expect(try await store.job(id: job.id)?.attempts == 1)
        try await store.uncountAttempts([job.id], owner: "n")
        #expect(try await store.job(id: job.id)?.attempts == 1, "a running job keeps the start it has")

        let lapsed = later + .seconds(31)
        #expect(try await store.claimJobs(owner: "n2", now: lapsed, leaseUntil: lapsed + .seconds(30), limit: 2).count == 2)
        try await store.uncountAttempts([other.id], owner: "n")
        #expect(try await store.job(id: other.id)?.attempts == 3, "a job taken by another node keeps its count")
        var finished = try #require(try await store.job(id: job.id))
        finished.state = .success
        #expect(try await store.finish(finished, owner: "n2", outbox: []))
        try await store.uncountAttempts([job.id], owner: "n2")
        #expect(try await store.job(id: job.id)?.attempts == 2, "an ended job keeps its count")
    }

    @Test(arguments: StoreKind.allCases)
    func finishingStoresTheOutboxAndFailedDeliveriesGoDeadThenRedrive(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        _ = try await submitOne(store, newJob(queue))
        let now = Timestamp(seconds: 1_700_000_000)
        var job = try await store.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(30), limit: 1)[0]
        job.state = .success
        job.endTime = now
        let target = CallbackTarget(destination: .mq(mode: .topic, name: "events", region: "sh"), format: .xml)
        let entry = OutboxEntry.taskFinish(job, target: target, formatting: CIFormatting(), now: now)
        #expect(try await store.finish(job, owner: "n", outbox: [entry]))
        let due = try await store.dueOutbox(.tdmq, now: now, limit: 10)
        #expect(due.map(\.id) == [entry.id])
        #expect(due.first?.routingKey == "job.\(queue.id).Snapshot.Success")
        #expect(due.first?.body == entry.body)
        #expect(due.first?.target == target.destination)
        #expect(try await store.dueOutbox(.url, now: now, limit: 10).isEmpty)

        try await store.markAttemptFailed(entry.id, error: "broker down", nextAttempt: now + .seconds(5), leaseEnd: entry.nextAttempt)
        #expect(try await store.dueOutbox(.tdmq, now: now, limit: 10).isEmpty)
        #expect(try await store.dueOutbox(.tdmq, now: now + .seconds(5), limit: 10).first?.attempts == 1)
        try await store.markAttemptFailed(entry.id, error: "still down", nextAttempt: nil, leaseEnd: now + .seconds(5))
        #expect(try await store.deadOutbox(limit: 10).first?.lastError == "still down")
        #expect(try await store.dueOutbox(.tdmq, now: now + .seconds(3600), limit: 10).isEmpty)
        #expect(try await store.redriveDead(now: now) == 1)
        #expect(try await store.dueOutbox(.tdmq, now: now, limit: 10).map(\.id) == [entry.id])
        try await store.markDelivered([entry.id], at: now)
        #expect(try await store.dueOutbox(.tdmq, now: now + .seconds(3600), limit: 10).isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func cancelEndsWaitingJobsFlagsRunningOnesAndRefusesFinishedOnes(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 2))
        let running = try await submitOne(store, newJob(queue))
        let succeeded = try await submitOne(store, newJob(queue))
        let waiting = try await submitOne(store, newJob(queue))
        let now = Timestamp(seconds: 1_700_000_000)
        var claimed = try await store.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(30), limit: 5)
        #expect(claimed.map(\.id) == [running.id, succeeded.id])
        claimed[1].state = .success
        _ = try await store.finish([FinishedJob(job: claimed[1], outbox: [])], owner: "n")

        guard case .cancelled(let cancelled) = try await store.cancel(waiting.id, now: now) else {
            Issue.record("waiting job not cancelled")
            return
        }
        #expect(cancelled.state == .cancel)
        guard case .stopping = try await store.cancel(running.id, now: now) else {
            Issue.record("running job not flagged")
            return
        }
        #expect(try await store.cancelRequests(owner: "n") == [running.id])
        // A client retrying its cancel is answered as the first time, and the job is left alone.
        guard case .alreadyCancelled(let again) = try await store.cancel(waiting.id, now: now + .seconds(5)) else {
            Issue.record("a repeated cancel is not answered as one")
            return
        }
        #expect(again.state == .cancel && again.endTime == now)
        #expect(try await store.job(id: waiting.id)?.endTime == now)
        await #expect(throws: CIError.self) { try await store.cancel(succeeded.id, now: now) }
        #expect(try await store.job(id: succeeded.id)?.state == .success)
        await #expect(throws: CIError.self) { try await store.cancel(JobID.generate(), now: now) }
    }

    @Test(arguments: StoreKind.allCases)
    func listingFiltersAndPages(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        for index in 0..<5 { _ = try await submitOne(store, newJob(queue, userData: "\(index)")) }
        let page1 = try await store.jobs(JobQuery(bucket: "b", limit: 2))
        #expect(page1.map(\.userData) == ["4", "3"])
        let page2 = try await store.jobs(JobQuery(bucket: "b", after: page1.last?.sequence, limit: 2))
        #expect(page2.map(\.userData) == ["2", "1"])
        let ascending = try await store.jobs(JobQuery(bucket: "b", newestFirst: false, limit: 10))
        #expect(ascending.map(\.userData) == ["0", "1", "2", "3", "4"])
        #expect(try await store.jobs(JobQuery(bucket: "b", states: [.running], limit: 10)).isEmpty)
        #expect(try await store.jobs(JobQuery(bucket: "other", limit: 10)).isEmpty)
    }
}

extension JobStoreContractTests {
    @Test(arguments: StoreKind.allCases)
    func aReleasedJobWaitsAgainInItsPlace(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 1))
        let first = try await submitOne(store, newJob(queue, userData: "first"))
        _ = try await submitOne(store, newJob(queue, userData: "second"))
        let now = Timestamp(seconds: 1_700_000_000)
        #expect(try await store.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(30), limit: 5).map(\.id) == [first.id])
        try await store.release([first.id], owner: "n")
        #expect(try await store.job(id: first.id)?.state == .submitted)
        let again = try await store.claimJobs(owner: "m", now: now, leaseUntil: now + .seconds(30), limit: 1)
        #expect(again.map(\.id) == [first.id])
        #expect(again.first?.attempts == 1, "a job handed back was not a failed attempt")
    }

    /// A claim takes jobs this process submitted from memory (`RecentJobs`) and others from the
    /// file: both must come back as the database has them.
    @Test func claimedJobsAreWhatTheDatabaseHoldsWhicheverProcessSubmittedThem() async throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent(TestEnvironment.uniqueName("store")).appendingPathComponent("mq.sqlite").path
        let here = try SQLiteJobStore(path: path)
        let elsewhere = try SQLiteJobStore(path: path)
        let queue = try await here.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 10))
        let mine = newJob(queue, level: 2, userData: "mine", callback: CallbackOverride(url: "https://example.com/cb", format: .json))
        let submittedHere = try await submitOne(here, mine)
        let submittedElsewhere = try await submitOne(elsewhere, newJob(queue, level: 1, userData: "theirs"))
        let now = Timestamp(seconds: 1_700_000_000)

        let claimed = try await here.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(30), limit: 5)
        #expect(claimed.map(\.id) == [submittedHere.id, submittedElsewhere.id])
        for job in claimed {
            let stored = try #require(try await elsewhere.job(id: job.id))
            #expect(job == stored)
            #expect(job.state == .running)
            #expect(job.lease == Job.Lease(owner: "n", expiresAt: now + .seconds(30)))
        }
        #expect(claimed.first?.callback == CallbackOverride(url: "https://example.com/cb", format: .json))

        // Handed back and claimed again: attempts (the hand-back gave its claim back) and the
        // first start time come from the file.
        try await here.release([submittedHere.id], owner: "n")
        let later = now + .seconds(60)
        let again = try #require(try await here.claimJobs(owner: "m", now: later, leaseUntil: later + .seconds(30), limit: 1).first)
        #expect(again.id == submittedHere.id)
        #expect(again.attempts == 1)
        #expect(again.startTime == now)
        #expect(again == (try await elsewhere.job(id: submittedHere.id)))
    }
}
