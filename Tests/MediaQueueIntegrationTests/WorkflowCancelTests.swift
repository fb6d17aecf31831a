import Foundation
import FoundationNetworking
import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
import Testing

/// A workflow node job cancelled through the API or the CLI while it waits, on a running
/// service: the run has ended by the time the cancel is answered, instead of at the workflow
/// service's next look at the running runs (every 10 seconds).
@Suite struct WorkflowCancelTests {
    @Test func cancellingAWaitingNodeJobEndsItsRunBeforeTheAnswer() async throws {
        let harness = try ServiceHarness { $0.anonymous = true }
        let port = Mutex<Int?>(nil)
        let (application, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
        defer { service.cancel() }
        let listening = try await eventually("the API to listen") { port.withLock { $0 } }
        let store = application.store
        let bucket = harness.configuration.bucket

        // The node's job waits: its queue is paused.
        var queue = try await application.prepare()
        queue.state = .paused
        try await store.updateQueue(queue)
        let now = SystemTimeSource().now
        let workflow = Definition(
            id: "w" + randomHex32(), kind: .workflow, bucket: bucket, name: "cancel", label: WorkflowState.active,
            body: try XMLDocumentParser.parse(WorkflowCrashTests.topology), createTime: now, updateTime: now
        )
        try await store.createDefinition(workflow)
        try FileManager.default.createDirectory(atPath: harness.bucketRoot + "/in", withIntermediateDirectories: true)
        func waitingRun(_ object: String) async throws -> (WorkflowRun, JobID) {
            try Data("not media: the job never runs".utf8).write(to: URL(fileURLWithPath: harness.bucketRoot + "/" + object))
            let run = try await application.workflowRunner(application.workers).trigger(workflow, object: object, storage: application.storage)
            let jobID = try #require(run.tasks.first?.jobID)
            #expect(try await store.job(id: jobID)?.state == .pause)
            return (run, jobID)
        }
        func expectEnded(_ run: WorkflowRun, by: String) async throws {
            let ended = try #require(try await store.run(id: run.id))
            #expect(ended.state == .cancel, "cancelled \(by): the run ended with the cancel, not at a later scan: \(ended.tasks)")
            #expect(ended.tasks.map(\.state) == ["Cancel"])
        }
        let (run, jobID) = try await waitingRun("in/a.mp4")

        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(listening)/\(bucket)/jobs/\(jobID.rawValue)?cancel")!)
        request.httpMethod = "PUT"
        let (_, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)

        #expect(try await store.job(id: jobID)?.state == .cancel)
        try await expectEnded(run, by: "through the API")

        // `mediaqueue jobs cancel`, in a process of its own, does the same.
        let (other, otherJob) = try await waitingRun("in/b.mp4")
        #expect(try await harness.cli(["jobs", "cancel", otherJob.rawValue]).contains("\(otherJob.rawValue): Cancel"))
        try await expectEnded(other, by: "with the CLI")
    }
}
