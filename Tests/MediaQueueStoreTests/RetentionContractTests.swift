import MediaQueueCore
import MediaQueueTestSupport
import Testing

/// What every store removes once it is past its retention, and what it never removes.
@Suite struct RetentionContractTests {
    @Test(arguments: StoreKind.allCases)
    func onlyEndedRecordsWhoseCallbacksAreDoneGoAndEachGoesOnce(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxConcurrent: 10))
        // Ids carry the wall-clock time they were made at: the cutoff is an hour from now.
        let now = SystemTimeSource().now
        let cutoff = now + .seconds(3600)
        let target = CallbackTarget(destination: .mq(mode: .topic, name: "events", region: "sh"), format: .xml)

        let names = ["delivered", "pending", "dead", "endedLater", "running", "taskOfARunningRun"]
        var submitted: [String: Job] = [:]
        for name in names { submitted[name] = try await submitOne(store, newJob(queue, userData: name)) }
        let claimed = try await store.claimJobs(owner: "n", now: now, leaseUntil: now + .seconds(7200), limit: 10)
        let waiting = try await submitOne(store, newJob(queue, userData: "waiting"))
        var entries: [String: OutboxEntry] = [:]
        for var job in claimed where job.userData != "running" {
            job.state = job.userData == "dead" ? .failed : .success
            job.endTime = job.userData == "endedLater" ? cutoff + .seconds(1) : now
            let entry = OutboxEntry.taskFinish(job, target: target, formatting: CIFormatting(), now: now)
            entries[job.userData ?? ""] = entry
            #expect(try await store.finish(job, owner: "n", outbox: [entry]))
        }
        try await store.markDelivered([entries["delivered"]!.id, entries["endedLater"]!.id, entries["taskOfARunningRun"]!.id], at: now)
        try await store.markAttemptFailed(entries["dead"]!.id, error: "receiver gone", nextAttempt: nil, leaseEnd: entries["dead"]!.nextAttempt)

        let flow = RunContractTests().run(queue)
        let ended = try await store.createRun(flow, jobs: [])
        var endedRun = ended
        endedRun.state = .success
        #expect(try await store.updateRun(endedRun, jobs: [], outbox: []))
        let running = try await store.createRun(RunContractTests().run(queue, object: "in/b.mp4"), jobs: [])
        var unannounced = try await store.createRun(RunContractTests().run(queue, object: "in/c.mp4"), jobs: [])
        unannounced.state = .failed
        let announcement = OutboxEntry(
            jobID: JobID(rawValue: unannounced.id), bucket: "b", target: .url("http://127.0.0.1:9/hook"), routingKey: "r", body: Array("x".utf8),
            contentType: "application/xml", nextAttempt: now, createdAt: now
        )
        #expect(try await store.updateRun(unannounced, jobs: [], outbox: [announcement]))
        let keeping: Set = [submitted["taskOfARunningRun"]!.id]

        // One record of each kind per call at most.
        #expect(try await store.purgeEnded(before: cutoff, limit: 1, keeping: keeping) == PurgedRecords(jobs: 1, deliveries: 1, runs: 1))
        #expect(try await store.purgeEnded(before: cutoff, limit: 10, keeping: keeping) == PurgedRecords(jobs: 1, deliveries: 3, runs: 0))
        #expect(try await store.purgeEnded(before: cutoff, limit: 10, keeping: keeping) == PurgedRecords(), "nothing is removed twice")

        for name in ["delivered", "dead"] {
            #expect(try await store.job(id: submitted[name]!.id) == nil, "\(name): ended, its callback done")
        }
        for name in ["pending", "endedLater", "running", "taskOfARunningRun"] {
            #expect(try await store.job(id: submitted[name]!.id) != nil, "\(name) stays")
        }
        #expect(try await store.job(id: waiting.id)?.state == .submitted)
        #expect(try await store.dueOutbox(.tdmq, now: now, limit: 10).map(\.id) == [entries["pending"]!.id], "a pending callback stays")
        #expect(try await store.run(id: unannounced.id)?.state == .failed, "a run whose end is still to be announced stays")
        #expect(try await store.deadOutbox(limit: 10).isEmpty)
        #expect(try await store.run(id: ended.id) == nil)
        #expect(try await store.run(id: running.id)?.state == .running)
    }
}
