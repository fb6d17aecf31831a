import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// Priority, MaxConcurrent, pause and enable, cancel, and crashes, against the real broker and a
/// SQLite file.
@Suite struct SchedulingTests {
    @Test func higherLevelsRunFirstOverTheWholeBacklogThenSubmissionOrder() async throws {
        let harness = try ServiceHarness { $0.queueMaxConcurrent = 1 }
        let worker = RecordingWorker()
        let (application, service) = try harness.startService(workers: [worker])
        defer { service.cancel() }
        try await harness.waitForIntake()

        var queue = try await application.prepare()
        queue.state = .paused
        try await application.store.updateQueue(queue)
        let low = (0..<2000).map { "low-\($0)" }
        let high = (0..<200).map { "high-\($0)" }
        try await harness.publish(batch: low.map { recordRequest($0, level: 0) })
        try await harness.publish(batch: high.map { recordRequest($0, level: 2) })
        try await eventually("2,200 jobs waiting as Pause", reaches: 2200, every: .milliseconds(500)) {
            try await application.store.jobs(JobQuery(states: [.pause], limit: 3000)).count
        }

        queue.state = .active
        try await application.store.updateQueue(queue)
        try await eventually("every job to start", reaches: 2200) { worker.startOrder.count }
        #expect(Array(worker.startOrder.prefix(200)) == high)
        #expect(Array(worker.startOrder.dropFirst(200)) == low)
        #expect(worker.mostAtOnce == 1, "MaxConcurrent 1")
    }

    /// Jobs that arrive while the queue has room are claimed as they are stored, and those that
    /// end make room for the next in the same write; neither may run more jobs than the queue's
    /// MaxConcurrent or the process's limit allows.
    @Test func neitherTheQueueNorTheProcessLimitIsExceeded() async throws {
        let harness = try ServiceHarness {
            $0.queueMaxConcurrent = 8
            $0.maxRunningJobs = 3
        }
        let worker = RecordingWorker(delay: .milliseconds(10))
        let (application, service) = try harness.startService(workers: [worker])
        defer { service.cancel() }
        try await harness.waitForIntake()
        _ = try await application.prepare()

        let names = (0..<120).map { "job-\($0)" }
        for chunk in stride(from: 0, to: names.count, by: 20) {
            try await harness.publish(batch: names[chunk..<(chunk + 20)].map { recordRequest($0, level: chunk / 20 % 3) })
        }
        try await eventually("all 120 to run", reaches: 120) { worker.endedCount }
        try await eventually("all 120 to succeed") {
            try await application.store.jobs(JobQuery(states: [.success], limit: 200)).count == 120
        }
        #expect(worker.startOrder.count == 120, "none ran twice")
        #expect(Set(worker.startOrder) == Set(names))
        #expect(worker.mostAtOnce <= 3, "the process runs at most MEDIAQUEUE_MAX_RUNNING_JOBS jobs")
    }

    @Test func pausingStopsNewStartsShowsPauseAndEnablingFinishesEveryJobOnce() async throws {
        let harness = try ServiceHarness { $0.queueMaxConcurrent = 4 }
        let worker = RecordingWorker(delay: .milliseconds(5))
        let (application, service) = try harness.startService(workers: [worker])
        defer { service.cancel() }
        try await harness.waitForIntake()
        var queue = try await application.prepare()

        let names = (0..<500).map { "job-\($0)" }
        try await harness.publish(batch: names.map { recordRequest($0) })
        try await eventually("some jobs to have started") { worker.startOrder.count >= 40 }
        queue.state = .paused
        try await application.store.updateQueue(queue)
        // What had been claimed when the pause was acknowledged; nothing else may start now.
        let claimedAtPause = Set(try await application.store.jobs(JobQuery(states: [.running, .success], limit: 1000)).compactMap(\.userData))

        try await eventually("the running jobs to finish") {
            try await application.store.jobs(JobQuery(states: [.running], limit: 10)).isEmpty
        }
        let waiting = try await application.store.jobs(JobQuery(states: [.submitted, .pause], limit: 1000))
        #expect(waiting.allSatisfy { $0.state == .pause }, "every waiting job shows Pause")
        #expect(waiting.count == 500 - claimedAtPause.count)
        // Three jobs of another queue, one after the other: each was claimed by a claim that also
        // looked at the paused queue, and none of those claims may start its jobs.
        let other = MediaQueue(bucket: harness.configuration.bucket, name: "other", createTime: SystemTimeSource().now)
        try await application.store.createQueue(other)
        for round in 0..<3 {
            try await harness.publish(recordRequest("other-\(round)").replacingOccurrences(of: "<Tag>", with: "<QueueId>\(other.id)</QueueId><Tag>"))
            try await eventually("the other queue's job \(round) to run") { worker.startOrder.contains("other-\(round)") }
        }
        let startedOfPaused = worker.startOrder.filter { !$0.hasPrefix("other-") }
        #expect(Set(startedOfPaused).isSubset(of: claimedAtPause), "no job started after the pause")

        queue.state = .active
        try await application.store.updateQueue(queue)
        try await eventually("all 500 to run", reaches: 503) { worker.startOrder.count }
        try await eventually("all 500 to succeed") {
            try await application.store.jobs(JobQuery(queueID: queue.id, states: [.success], limit: 1000)).count == 500
        }
        let startedOfQueue = worker.startOrder.filter { !$0.hasPrefix("other-") }
        #expect(startedOfQueue.count == 500, "none ran twice")
        #expect(Set(startedOfQueue) == Set(names))
        #expect(worker.mostAtOnce <= 4, "MaxConcurrent 4")
    }

    @Test func cancelWorksInEveryStateAndThroughARestart() async throws {
        let harness = try ServiceHarness { $0.queueMaxConcurrent = 1 }
        let events = try await harness.subscribeToEvents()
        let worker = RecordingWorker(delay: .seconds(600))
        var (application, service) = try harness.startService(workers: [worker])
        try await harness.waitForIntake()
        var queue = try await application.prepare()
        let store = application.store
        func job(_ userData: String) async throws -> Job {
            try await eventually("job \(userData)") {
                try await store.jobs(JobQuery(limit: 100)).first { $0.userData == userData }
            }
        }

        // Running: its worker is stopped and it ends as Cancel, with a callback.
        try await harness.publish(recordRequest("running"))
        try await eventually("the first job to start") { worker.startOrder == ["running"] }
        // Submitted: waits behind it (MaxConcurrent 1).
        try await harness.publish(recordRequest("submitted"))
        let submitted = try await job("submitted")
        #expect(submitted.state == .submitted)
        guard case .cancelled(let cancelledWaiting) = try await store.cancel(submitted.id, now: SystemTimeSource().now) else {
            Issue.record("a Submitted job must be cancelled at once")
            return
        }
        #expect(cancelledWaiting.state == .cancel)

        let running = try await job("running")
        guard case .stopping = try await store.cancel(running.id, now: SystemTimeSource().now) else {
            Issue.record("a Running job must be stopped")
            return
        }
        let event = try #require(try await harness.receive(1, from: events).first)
        #expect(event.routingKey.hasSuffix(".Record.Cancel"))
        #expect(event.xml?["JobsDetail"]?.text("JobId") == running.id.rawValue)
        #expect(try await store.job(id: running.id)?.state == .cancel)

        // Pause: a waiting job in a paused queue.
        queue.state = .paused
        try await store.updateQueue(queue)
        try await harness.publish(recordRequest("paused"))
        let paused = try await job("paused")
        #expect(paused.state == .pause)
        _ = try await store.cancel(paused.id, now: SystemTimeSource().now)
        #expect(try await store.job(id: paused.id)?.state == .cancel)

        // A job stopped by a cancel is cancelled already: a repeat changes nothing.
        guard case .alreadyCancelled(let stopped) = try await store.cancel(running.id, now: SystemTimeSource().now), stopped.state == .cancel else {
            Issue.record("a repeated cancel of a stopped job must be answered as one")
            return
        }

        // Through a restart: cancelled while the service was down, it never runs.
        queue.state = .active
        try await store.updateQueue(queue)
        service.cancel()
        _ = await service.result
        queue.state = .paused
        try await store.updateQueue(queue)
        try await harness.publish(recordRequest("while-down"))
        (application, service) = try harness.startService(workers: [worker])
        defer { service.cancel() }
        let whileDown = try await job("while-down")
        _ = try await application.store.cancel(whileDown.id, now: SystemTimeSource().now)
        queue.state = .active
        try await application.store.updateQueue(queue)
        try await harness.publish(recordRequest("after"))
        try await eventually("the next job to start") { worker.startOrder.contains("after") }
        #expect(!worker.startOrder.contains("while-down"))
        #expect(!worker.startOrder.contains("submitted"))
        #expect(!worker.startOrder.contains("paused"))
        #expect(try await application.store.job(id: whileDown.id)?.state == .cancel)
    }

    @Test func aJobOutlivingTheBrokersConsumerTimeoutIsNotRedeliveredOrDuplicated() async throws {
        // scripts/test.sh gives the shared broker consumer_timeout = 20 s; the broker checks about
        // once a minute, so the job runs well past both.
        let harness = try ServiceHarness()
        let events = try await harness.subscribeToEvents()
        let worker = RecordingWorker(delay: .seconds(80))
        let (application, service) = try harness.startService(workers: [worker])
        defer { service.cancel() }
        try await harness.waitForIntake()

        // No message-id: a redelivery (the broker closing the intake's channel at its consumer
        // timeout) would be a second job, not a duplicate the store recognises.
        try await harness.publish(recordRequest("long"))
        let event = try #require(try await harness.receive(1, from: events).first)
        #expect(event.xml?["JobsDetail"]?.text("State") == "Success")
        #expect(worker.startOrder == ["long"])
        #expect(try await application.store.jobs(JobQuery(limit: 10)).count == 1)
        #expect(try await harness.client.queueStatus(harness.configuration.intakeQueue).messages == 0)
        #expect(try await harness.client.queueStatus(harness.configuration.intakeQueue).consumers == 1, "the intake's channel is still open")
    }
}
