import Logging
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import ServiceLifecycle
import Synchronization
import Testing
@testable import MediaQueueEngine

/// The workflow service on the memory store and a manual clock: a run whose job this node ended
/// moves on at once, without waiting for the scan; a job ended elsewhere moves its run on at the
/// next scan of every running run.
@Suite(.timeLimit(.minutes(5))) struct WorkflowServiceTests {
    struct AnyWorker: MediaWorker {
        let tag: String
        func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {}
        func run(_ job: Job, context: WorkContext) async throws -> WorkResult { WorkResult() }
    }

    let clock = ManualTimeSource(Timestamp(seconds: 1_700_000_000))
    let store: MemoryJobStore

    init() {
        store = MemoryJobStore(time: clock)
    }

    func runner() async throws -> WorkflowRunner {
        let queues = QueueDirectory(store: store) { MediaQueue(bucket: "", name: MediaQueue.defaultName, createTime: Timestamp(seconds: 0)) }
        _ = try await queues.defaultQueue(bucket: "b")
        let topology = try XMLDocumentParser.parse("""
            <Topology><Dependencies><Start>Snapshot_1</Start><Snapshot_1>MediaInfo_1</Snapshot_1><MediaInfo_1>End</MediaInfo_1></Dependencies>
            <Nodes><Start><Type>Start</Type><Input><ObjectPrefix>in/</ObjectPrefix></Input></Start>
            <Snapshot_1><Type>Snapshot</Type><Operation><Output><Object>out/s-${Number}.jpg</Object></Output></Operation></Snapshot_1>
            <MediaInfo_1><Type>MediaInfo</Type><Operation/></MediaInfo_1></Nodes></Topology>
            """)
        try await store.createDefinition(Definition(
            id: "wflow", kind: .workflow, bucket: "b", name: "flow", label: WorkflowState.active, body: topology, createTime: clock.now, updateTime: clock.now
        ))
        return WorkflowRunner(
            store: store, queues: queues, templates: nil, workers: WorkerRegistry(["Snapshot", "MediaInfo"].map(AnyWorker.init)),
            formatting: CIFormatting(), time: clock
        )
    }

    /// Ends every waiting job with success, as another node's dispatcher would.
    func endWaitingJobs() async throws {
        try #require(!(try await store.endWaitingJobs(.success, owner: "elsewhere", now: clock.now)).isEmpty)
    }

    @Test func aRunMovesOnWhenThisNodeEndedItsJobAndAtTheScanWhenAnotherDid() async throws {
        let runner = try await runner()
        let run = try #require(try await runner.upload(bucket: "b", key: "in/a.mp4") {}.runs.first)
        let endedRuns = RunsToAdvance(time: clock)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = WorkflowService(
            runner: runner, store: store, storage: ObjectsStub(), endedRuns: endedRuns, options: WorkflowServiceOptions(scanInterval: .seconds(10)), time: clock, logger: logger
        )
        let task = Task { try await service.run() }
        defer { task.cancel() }

        // Once its first scan is done and it waits for the next, a job ends here: the
        // dispatcher names the run, which starts its next node at once.
        await clock.sleepers(atLeast: 1)
        try await endWaitingJobs()
        endedRuns.add([run.id])
        try await eventually("the run's second node to start") { try await store.run(id: run.id)?.tasks.last?.jobID != nil }
        #expect(clock.now == Timestamp(seconds: 1_700_000_000), "without waiting for the scan")

        // Ended elsewhere: nobody names the run; the next scan ends it. Time moves once the
        // service waits again (its wait's end is set when it starts waiting).
        try await endWaitingJobs()
        await clock.sleepers(atLeast: 1)
        clock.advance(by: .seconds(10))
        try await eventually("the scan to end the run") { try await store.run(id: run.id)?.state == .success }
    }

    /// A graceful shutdown ends the wait for the next scan: with a manual clock that never moves,
    /// the service would otherwise wait for good.
    /// Object storage that does not answer until the call is cancelled, as one away can hold
    /// each call for a client's whole timeout.
    final class UnansweringStorage: ObjectStorage {
        let base = ObjectsStub()
        let clock: ManualTimeSource
        let calls = Mutex(0)

        init(clock: ManualTimeSource) {
            self.clock = clock
        }

        func objectInfo(bucket: String, key: ObjectKey) async throws(WorkFailure) -> ObjectInfo? {
            calls.withLock { $0 += 1 }
            try? await clock.sleep(for: .seconds(24 * 3600))
            throw WorkFailure(code: "InternalError", message: "no answer")
        }

        func readableFile(bucket: String, key: ObjectKey) async throws(WorkFailure) -> ReadableFile? { nil }
        func makeStagingFolder(bucket: String, name: String, for key: ObjectKey?) throws(WorkFailure) -> String { "" }
        func publish(_ path: String, bucket: String, as key: ObjectKey) async throws(WorkFailure) -> String? { nil }
        func remove(bucket: String, key: ObjectKey) async {}
        func listObjects(bucket: String, _ query: ObjectListQuery) async throws(WorkFailure) -> ObjectListing { ObjectListing() }
        func removeStagingFolder(_ path: String) {}
        func displayPrefixes(bucket: String) -> [(path: String, shownAs: String)] { [] }
    }

    /// A shutdown while uploads are replayed with object storage away ends the replay at the
    /// arrival it is on: the service stops, and the arrivals stay for the next start.
    @Test func aShutdownEndsAReplayWaitingOnObjectStorage() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        for key in ["in/a.mp4", "in/b.mp4"] {
            try await store.recordArrival(Arrival(bucket: "b", key: key, time: clock.now - .seconds(600)))
        }
        let storage = UnansweringStorage(clock: clock)
        let service = WorkflowService(
            runner: try await runner(), store: store, storage: storage, endedRuns: RunsToAdvance(time: clock), time: clock, logger: logger
        )
        let group = ServiceGroup(services: [service], logger: logger)
        let running = Task { try await group.run() }
        defer { running.cancel() }
        try await eventually("the replay asks about the first arrival") { storage.calls.withLock { $0 } == 1 }

        await group.triggerGracefulShutdown()
        let ended = Mutex(false)
        let watcher = Task { _ = await running.result; ended.withLock { $0 = true } }
        try await eventually("the service stopped") { ended.withLock { $0 } }
        await watcher.value
        try await running.value
        #expect(storage.calls.withLock { $0 } == 1, "the second arrival waits for the next start")
        #expect(try await store.arrivals(before: clock.now, limit: 10).count == 2)
    }

    @Test func aShutdownEndsTheWaitForTheNextScan() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = WorkflowService(
            runner: try await runner(), store: store, storage: ObjectsStub(), endedRuns: RunsToAdvance(time: clock), options: WorkflowServiceOptions(scanInterval: .seconds(10)),
            time: clock, logger: logger
        )
        let group = ServiceGroup(services: [service], logger: logger)
        let running = Task { try await group.run() }
        defer { running.cancel() }
        await clock.sleepers(atLeast: 1)

        await group.triggerGracefulShutdown()
        try await running.value
        #expect(clock.now == Timestamp(seconds: 1_700_000_000))
    }
}
