import Foundation
import Logging
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import Testing
@testable import MediaQueueEngine

/// The dispatcher on the SQLite store, which refuses to start a write in a cancelled task (GRDB
/// checks before each): what a dispatcher must still write after it was cancelled.
@Suite(.timeLimit(.minutes(2))) struct DispatcherOnSQLiteTests {
    /// Cancelled rather than shut down gracefully (a service beside it failed, or the shutdown's
    /// backstop), the dispatcher still hands its running job back to its queue, at once, not
    /// when the job's lease ends.
    @Test func aCancelledDispatcherHandsItsRunningJobBack() async throws {
        let clock = ManualTimeSource()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("dispatcher"))
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteJobStore(path: folder.appendingPathComponent("mq.sqlite").path, time: clock)
        let (started, startedContinuation) = AsyncStream.makeStream(of: JobID.self)
        let workers = WorkerRegistry([DispatcherServiceTests.HoldWorker(started: startedContinuation, starts: DispatcherServiceTests.Starts())])
        let queues = QueueDirectory(store: store) { MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 0)) }
        let body = Array("<Request><Tag>Hold</Tag><Input><Object>in.mp4</Object></Input><Operation/></Request>".utf8)
        let submission = try await SubmissionFactory(queues: queues, workers: workers)
            .submission(body: body, bucket: "b-1", idempotencyKey: nil, now: clock.now).get()
        _ = try await store.submit([submission])

        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = DispatcherService(
            store: store, workers: workers, options: DispatcherOptions(owner: "node-a", storage: ObjectsStub()),
            formatting: CIFormatting(), time: clock, logger: logger
        )
        let dispatcher = Task { try await service.run() }
        var startedJobs = started.makeAsyncIterator()
        let job = try #require(await startedJobs.next())
        #expect(try await store.job(id: job)?.state == .running)

        dispatcher.cancel()
        _ = await dispatcher.result
        let handedBack = try await store.job(id: job)
        #expect(handedBack?.state == .submitted)
        #expect(handedBack?.lease == nil)
    }
}
