import Foundation
import FoundationNetworking
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueuePostgres
import MediaQueueTestSupport
import Synchronization
import Testing

/// Three real `mediaqueue serve` nodes on one PostgreSQL database and one broker: the queue's
/// rules hold across the cluster, and a node's death loses nothing.
@Suite(.serialized) struct MultiNodeTests {
    static let enabled = Cluster.binary != nil

    /// 500 jobs at mixed levels wait in a paused queue with `MaxConcurrent` 1; once enabled, the
    /// three nodes run them one at a time, in level-then-submission order.
    @Test(.enabled(if: enabled, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func jobsStartInLevelThenSubmissionOrderAcrossNodes() async throws {
        let cluster = try await Cluster()
        let queue = try await cluster.prepareDefaultQueue {
            $0.maxConcurrent = 1
            $0.state = .paused
        }
        try cluster.start(3)
        try await cluster.waitForConsumers(3)
        let total = 500
        for start in stride(from: 0, to: total, by: 100) {
            try await cluster.harness.publish(identified: (start..<start + 100).map { clusterSubmission($0, level: [0, 2, 1, 0, 2][$0 % 5]) })
        }
        try await eventually("every submission to wait in the paused queue", reaches: total) { try await cluster.count([.pause]) }
        var enabled = queue
        enabled.state = .active
        try await cluster.store.updateQueue(enabled)
        try await eventually("every job to end", reaches: total) { try await cluster.count([.success, .failed, .cancel]) }

        let jobs = try await cluster.jobs()
        #expect(jobs.count == total)
        #expect(jobs.allSatisfy { $0.state == .success && $0.attempts == 1 }, "\(cluster.logTails)")
        let expected = jobs.sorted { ($0.jobLevel, -$0.sequence) > ($1.jobLevel, -$1.sequence) }
        // One at a time, cluster-wide: each job starts no earlier than the one before it ended
        // (times are in milliseconds, from the nodes' shared clock).
        var outOfOrder: [String] = []
        for (before, after) in zip(expected, expected.dropFirst()) {
            guard let end = before.endTime, let start = after.startTime, start >= end else {
                outOfOrder.append("\(after.userData ?? "") started before \(before.userData ?? "") ended")
                continue
            }
        }
        #expect(outOfOrder.isEmpty, "\(outOfOrder.prefix(5))")
    }

    /// Slow jobs on a queue with `MaxConcurrent` 3: every node's API, sampled throughout, never
    /// reports more than 3 running; pausing stops new starts on every node; enabling resumes.
    @Test(.enabled(if: enabled, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func maxConcurrentAndPauseHoldOnEveryNode() async throws {
        let cluster = try await Cluster()
        try await SampleMedia.makeVideo(at: cluster.harness.bucketRoot + "/input/a.mp4", seconds: 3)
        let queue = try await cluster.prepareDefaultQueue { $0.maxConcurrent = 3 }
        let nodes = try cluster.start(3)
        try await cluster.waitForConsumers(3)
        var ports: [Int] = []
        for node in nodes { ports.append(try await node.apiPort()) }

        let total = 24
        try await cluster.harness.publish(batch: (0..<total).map {
            snapshotRequest(output: "out/\($0)/s-${Number}.jpg", count: 2, userData: "n-\($0)")
        })
        // Sample every node's view while the first half runs.
        var mostRunning = 0
        try await eventually("half of the jobs to end", reaches: total / 2) {
            for port in ports { mostRunning = max(mostRunning, try await cluster.runningJobs(port: port, queue: queue.id)) }
            return try await cluster.count([.success, .failed])
        }
        #expect(mostRunning <= 3, "a node saw \(mostRunning) jobs running")
        #expect(mostRunning >= 2, "the nodes ran jobs side by side (most seen at once: \(mostRunning))")

        // Paused through one node: no node starts another job.
        try await cluster.setQueueState(.paused, queue: queue.id, port: ports[1])
        let startedAtPause = Set(try await cluster.jobs().filter { $0.startTime != nil }.map(\.id))
        try await eventually("the running jobs to end") { try await cluster.count([.running]) == 0 }
        let startedAfterDrain = Set(try await cluster.jobs().filter { $0.startTime != nil }.map(\.id))
        #expect(startedAfterDrain == startedAtPause, "\(startedAfterDrain.subtracting(startedAtPause).count) jobs started after the pause")
        #expect(try await cluster.count([.pause]) == total - startedAtPause.count)

        try await cluster.setQueueState(.active, queue: queue.id, port: ports[2])
        try await eventually("every job to end", reaches: total) { try await cluster.count([.success, .failed, .cancel]) }
        for port in ports { mostRunning = max(mostRunning, try await cluster.runningJobs(port: port, queue: queue.id)) }
        let jobs = try await cluster.jobs()
        #expect(jobs.allSatisfy { $0.state == .success }, "\(jobs.filter { $0.state != .success }.map(\.message)) \(cluster.logTails)")
    }

    /// A cancel made through one node's API stops the job where it runs, on another node.
    @Test(.enabled(if: enabled, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func aCancelThroughOneNodeStopsTheJobOnTheNodeRunningIt() async throws {
        let cluster = try await Cluster()
        // H.265 at `medium` on 60 s of video: far longer than the cancel takes to arrive.
        try await SampleMedia.makeVideo(at: cluster.harness.bucketRoot + "/input/long.mp4", seconds: 60, size: "640x360")
        let nodes = try cluster.start(2)
        try await cluster.waitForConsumers(2)
        var ports: [Int32: Int] = [:]
        for node in nodes { ports[node.pid] = try await node.apiPort() }
        try await cluster.harness.publish("""
            <Request><Tag>Transcode</Tag><Input><Object>input/long.mp4</Object></Input><Operation>
            <Transcode><Container><Format>mp4</Format></Container><Video><Codec>H.265</Codec><Preset>medium</Preset></Video></Transcode>
            <Output><Object>out/long.mp4</Object></Output></Operation></Request>
            """)
        let (job, runner) = try await eventually("the transcode to run on a node") { () -> (Job, ChildProcess)? in
            guard let job = try await cluster.store.jobs(JobQuery(states: [.running], limit: 1)).first else { return nil }
            return nodes.first { job.lease?.owner.contains("/\($0.pid)/") == true }.map { (job, $0) }
        }
        let other = try #require(nodes.first { $0.pid != runner.pid })
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(try #require(ports[other.pid]))/\(cluster.harness.configuration.bucket)/jobs/\(job.id.rawValue)?cancel")!)
        request.httpMethod = "PUT"
        let (_, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        let ended = try await eventually("the job to end") { () -> Job? in
            guard let current = try await cluster.store.job(id: job.id), current.state.isTerminal else { return nil }
            return current
        }
        #expect(ended.state == .cancel, "\(ended.state) \(ended.message)")
    }

    /// `kill -9` of a node while it runs jobs: another node takes them once their leases expire;
    /// every job ends in exactly one terminal state and every end is announced.
    @Test(.enabled(if: enabled, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func aKilledNodesJobsEndOnAnotherNode() async throws {
        let cluster = try await Cluster(extra: ["MEDIAQUEUE_MAX_RUNNING_JOBS": "2"])
        try await SampleMedia.makeVideo(at: cluster.harness.bucketRoot + "/input/a.mp4", seconds: 3)
        let tally = EventTally(consumer: try await cluster.harness.subscribeToEvents(), client: cluster.harness.client)
        let nodes = try cluster.start(3)
        try await cluster.waitForConsumers(3)
        let total = 30
        try await cluster.harness.publish(batch: (0..<total).map {
            snapshotRequest(output: "out/\($0)/s-${Number}.jpg", count: 2, userData: "n-\($0)")
        })

        // The victim: the first node seen holding a running job.
        let (victim, held) = try await eventually("a node to run jobs") { () -> (ChildProcess, Set<JobID>)? in
            let running = try await cluster.store.jobs(JobQuery(states: [.running], limit: 100))
            for node in nodes {
                let mine = running.filter { $0.lease?.owner.contains("/\(node.pid)/") == true }
                if !mine.isEmpty { return (node, Set(mine.map(\.id))) }
            }
            return nil
        }
        await victim.stop()
        try await eventually("every job to end", reaches: total) { try await cluster.count([.success, .failed, .cancel]) }
        try await eventually("every job's TaskFinish", reaches: total) { tally.distinctJobs }

        let jobs = try await cluster.jobs()
        #expect(jobs.count == total, "no job lost or created twice")
        #expect(jobs.allSatisfy { $0.state == .success }, "\(jobs.filter { $0.state != .success }.map(\.message)) \(cluster.logTails)")
        let retaken = jobs.filter { held.contains($0.id) }
        #expect(retaken.count == held.count)
        #expect(retaken.allSatisfy { $0.attempts == 2 }, "the killed node's jobs ran again elsewhere: \(retaken.map(\.attempts))")
        let announcements = tally.announcements
        #expect(jobs.allSatisfy { Set(announcements[$0.id.rawValue] ?? []) == [JobState.success.rawValue] })
    }

    /// Chaos across nodes: while 5,000 Noop jobs flow, a random node is killed (`kill -9`) every 1
    /// to 3 seconds and a new one started. Nothing is lost or created twice, every end is announced,
    /// and the only jobs that ran twice are ones a killed node held (none was taken from a live
    /// lease).
    @Test(.enabled(if: enabled, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func killingRandomNodesLosesNothing() async throws {
        let total = 5_000
        let cluster = try await Cluster()
        let tally = EventTally(consumer: try await cluster.harness.subscribeToEvents(), client: cluster.harness.client)
        var nodes = try cluster.start(3)
        try await cluster.waitForConsumers(3)
        let publisher = Task {
            for start in stride(from: 0, to: total, by: 100) {
                try await cluster.harness.publish(identified: chaosSubmissions(start..<min(total, start + 100)))
            }
        }

        var kills = 0
        var heldByKilled = Set<JobID>()
        while try await cluster.count([.success, .failed, .cancel]) < total || kills == 0 {
            // Fault injection at random moments; nothing is asserted about time.
            try await Task.sleep(for: .milliseconds(Int.random(in: 1_000...3_000)))
            let victim = nodes.remove(at: Int.random(in: 0..<nodes.count))
            await victim.stop()
            kills += 1
            // Its leases stay in the database until they expire: these jobs may run again.
            let running = try await cluster.store.jobs(JobQuery(states: [.running], limit: 1_000))
            heldByKilled.formUnion(running.filter { $0.lease?.owner.contains("/\(victim.pid)/") == true }.map(\.id))
            nodes += try cluster.start(1)
            guard kills < 100 else { break }
        }
        try await publisher.value
        try await eventually("every job to end", reaches: total) { try await cluster.count([.success, .failed, .cancel]) }
        try await eventually("every job's TaskFinish", reaches: total) { tally.distinctJobs }

        let figures = try await ChaosFigures.measure(
            scenario: "multi-node kills", faults: "\(kills) nodes killed", submitted: total, store: cluster.store,
            announcements: tally.announcements
        )
        figures.report()
        #expect(figures.isClean, "\(figures)\n\(cluster.logTails)")
        let ranTwice = try await cluster.jobs().filter { $0.attempts > 1 }
        let unexplained = ranTwice.filter { !heldByKilled.contains($0.id) }
        #expect(unexplained.isEmpty, "\(unexplained.count) jobs ran twice though no killed node held them")
    }
}
