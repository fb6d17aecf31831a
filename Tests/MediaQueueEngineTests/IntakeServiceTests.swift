import Logging
import MediaQueueAMQP
import MediaQueueCore
import MediaQueueXML
import MediaQueueTestSupport
import ServiceLifecycle
import Synchronization
import Testing
@testable import MediaQueueEngine

/// The intake on the in-memory broker and the memory store: what a producer sees (its job
/// stored once, an answer, a dead letter with the reason) and what the broker sees (every
/// delivery settled, each on its own outcome). Time is a manual clock: the pause after a failed
/// dead letter passes when the test moves it.
@Suite(.timeLimit(.minutes(5))) struct IntakeServiceTests {
    struct RecordWorker: MediaWorker {
        var tag: String { "Record" }
        func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {}
        func run(_ job: Job, context: WorkContext) async throws -> WorkResult { WorkResult() }
    }

    let broker = MemoryBroker()
    let store = MemoryJobStore()
    let clock = ManualTimeSource()
    let queueHealth = StoreWriteHealth()
    var options = IntakeOptions(linger: .zero, defaultBucket: "b-1")

    static func request(_ userData: String) -> [UInt8] {
        Array("<Request><Tag>Record</Tag><Input><Object>in.mp4</Object></Input><Operation><UserData>\(userData)</UserData></Operation></Request>".utf8)
    }

    func message(_ body: [UInt8], id: String? = nil, replyTo: String? = nil) -> AMQPOutgoingMessage {
        AMQPOutgoingMessage(routingKey: options.queue, body: body, properties: AMQPProperties(messageID: id, replyTo: replyTo, persistent: true))
    }

    /// Runs the intake until the returned task is cancelled; the broker loses the connection
    /// during the intake's first `lostDeclares` declares.
    func startIntake(losingConnectionDuringDeclares lostDeclares: Int = 0, store: (any JobStore)? = nil) async throws -> Task<Void, any Error> {
        let intake = makeIntake(store: store ?? self.store)
        // The intake declares its queues: producers may publish once they are there.
        try await broker.declare(intake.topology)
        broker.loseConnection(duringNextDeclares: lostDeclares)
        return Task { try await intake.run() }
    }

    func makeIntake(store: any JobStore) -> IntakeService {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let queues = QueueDirectory(store: store) { MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 0)) }
        return IntakeService(
            broker: broker, store: store, factory: SubmissionFactory(queues: queues, workers: WorkerRegistry([RecordWorker()])),
            options: options, formatting: CIFormatting(), time: clock, queueHealth: queueHealth, logger: logger
        )
    }

    /// Templates of a store that cannot read one of them (`unreadable`), as a damaged row would.
    struct OneUnreadableTemplate: DefinitionStore {
        let unreadable: String
        struct ReadFailed: Error {}
        func createDefinition(_ definition: Definition) async throws {}
        func updateDefinition(_ definition: Definition) async throws {}
        func definitions(_ kind: Definition.Kind, bucket: String) async throws -> [Definition] { [] }
        func definition(_ kind: Definition.Kind, id: String) async throws -> Definition? {
            if id == unreadable { throw ReadFailed() }
            return nil
        }
        func deleteDefinition(_ kind: Definition.Kind, id: String, bucket: String) async throws {}
    }

    /// A message the store cannot be read for goes back to the queue on its own: the others of its
    /// batch are stored. It took the whole batch back with it, every time, so no message behind it
    /// was ever stored.
    @Test func aMessageTheStoreCannotBeReadForHoldsUpNoOther() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let queues = QueueDirectory(store: store) { MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 0)) }
        let factory = SubmissionFactory(
            queues: queues, workers: WorkerRegistry([RecordWorker()]),
            templates: TemplateResolver(store: OneUnreadableTemplate(unreadable: "tdamaged"), builtInIDs: [])
        )
        let intake = IntakeService(broker: broker, store: store, factory: factory, options: options, formatting: CIFormatting(), time: clock, logger: logger)
        try await broker.declare(intake.topology)
        let running = Task { try await intake.run() }
        defer { running.cancel() }
        let poisoned = Array("<Request><Tag>Record</Tag><Input><Object>in.mp4</Object></Input><Operation><TemplateId>tdamaged</TemplateId></Operation></Request>".utf8)
        await publish(message(poisoned, id: "poisoned"), message(Self.request("first"), id: "first"), message(Self.request("second"), id: "second"))
        try await eventually("the two good submissions stored") {
            try await store.jobs(JobQuery(limit: 10)).compactMap(\.userData).sorted() == ["first", "second"]
        }
        try await broker.wait { $0.messages(in: options.queue).count + ($0.unacknowledged[options.queue] ?? 0) == 1 ? true : nil }
    }

    func publish(_ messages: AMQPOutgoingMessage...) async {
        for result in await broker.publish(batch: messages) { #expect((try? result.get()) != nil) }
    }

    /// Waits until the intake queue is empty and every delivery of it settled.
    func waitUntilSettled() async throws {
        let queue = options.queue
        try await broker.wait { $0.messages(in: queue).isEmpty && ($0.unacknowledged[queue] ?? 0) == 0 ? true : nil }
    }

    /// Waits until every delivery is settled or the intake pauses after a batch (beside its purge
    /// timer's sleep): a test that expects the first fails at once on the second instead of at its
    /// time limit.
    func waitUntilSettledOrPaused() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await waitUntilSettled() }
            group.addTask { await clock.sleepers(atLeast: 2) }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Moves the clock from one sleeper's deadline to the next, up to `limit`, until `running`
    /// (a service group shutting down) ends.
    func moveClockUntilEnded(_ running: Task<Void, any Error>, upTo limit: Timestamp) async throws {
        let ended = Mutex(false)
        let watcher = Task { _ = await running.result; ended.withLock { $0 = true } }
        try await eventually("the intake stopped") {
            if ended.withLock({ $0 }) { return true }
            if let next = clock.nextDeadline, next <= limit { clock.advance(by: .milliseconds(max(0, next.milliseconds - clock.now.milliseconds))) }
            return nil
        }
        await watcher.value
        try await running.value
    }

    /// Runs the intake on `store` with one submission (without message-id) in its queue, and
    /// shuts it down once the first read after the failed batch failed; the clock then moves on
    /// until the intake stops, up to `extra`.
    func stopWhileReadingBack(_ store: CommitThenFailStore, within extra: Duration) async throws {
        let intake = makeIntake(store: store)
        try await broker.declare(intake.topology)
        await publish(message(Self.request("first")))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let group = ServiceGroup(services: [intake], logger: logger)
        let running = Task { try await group.run() }
        defer { running.cancel() }
        // The first read failed: the intake pauses (beside its purge timer's sleep).
        await clock.sleepers(atLeast: 2)
        await group.triggerGracefulShutdown()
        try await moveClockUntilEnded(running, upTo: clock.now + extra)
    }

    func storedUserData() async throws -> [String] {
        try await store.jobs(JobQuery(limit: 100)).compactMap(\.userData).sorted()
    }

    @Test func aSubmissionIsStoredAnsweredAndAcked() async throws {
        let intake = try await startIntake()
        defer { intake.cancel() }
        try await broker.declare(AMQPTopology(queues: [AMQPQueue(name: "replies")]))
        await publish(message(Self.request("one"), id: "m-1", replyTo: "replies"))

        let reply = try await broker.wait { $0.messages(in: "replies").first }
        try await waitUntilSettled()
        let jobs = try await store.jobs(JobQuery(limit: 100))
        #expect(jobs.map(\.userData) == ["one"])
        #expect(reply.properties.correlationID == "m-1")
        let answer = try XMLDocumentParser.parse(reply.body)
        #expect(answer.name == "Response")
        #expect(answer.text("JobsDetail", "JobId") == jobs.first?.id.rawValue)
        #expect(broker.snapshot.misuse.isEmpty)
    }

    @Test func aSubmissionDeliveredTwiceWithItsMessageIDIsOneJob() async throws {
        let intake = try await startIntake()
        defer { intake.cancel() }
        await publish(message(Self.request("once"), id: "m-2"))
        try await waitUntilSettled()
        await publish(message(Self.request("once"), id: "m-2"))
        try await waitUntilSettled()
        #expect(try await storedUserData() == ["once"])
    }

    /// A message whose jobs were stored, delivered again when the checks refuse it (its template
    /// deleted meanwhile; here its body no longer reads): it was dead-lettered and its producer
    /// told it failed, though its job runs. It is settled as the duplicate it is.
    @Test func aStoredMessageRefusedWhenDeliveredAgainIsAnsweredWithItsJobs() async throws {
        let intake = try await startIntake()
        defer { intake.cancel() }
        try await broker.declare(AMQPTopology(queues: [AMQPQueue(name: "replies")]))
        await publish(message(Self.request("kept"), id: "m-3"))
        try await waitUntilSettled()
        await publish(message(Array("no longer a request".utf8), id: "m-3", replyTo: "replies"))

        let reply = try await broker.wait { $0.messages(in: "replies").first }
        try await waitUntilSettled()
        let jobs = try await store.jobs(JobQuery(limit: 100))
        #expect(jobs.map(\.userData) == ["kept"])
        #expect(try XMLDocumentParser.parse(reply.body).text("JobsDetail", "JobId") == jobs.first?.id.rawValue)
        #expect(broker.snapshot.messages(in: options.deadLetterQueue).isEmpty)
        #expect(broker.snapshot.misuse.isEmpty)
    }

    @Test func badInputIsDeadLetteredWithItsReasonAndMakesNoJob() async throws {
        let intake = try await startIntake()
        defer { intake.cancel() }
        await publish(message(Array("not xml".utf8), id: "bad-1"))

        let dead = try await broker.wait { $0.messages(in: options.deadLetterQueue).first }
        try await waitUntilSettled()
        #expect(dead.body == Array("not xml".utf8))
        #expect(dead.properties.messageID == "bad-1")
        #expect(dead.properties.headers["x-mediaqueue-error-code"]?.stringValue == CIError.Code.invalidArgument.rawValue)
        #expect(dead.properties.headers["x-mediaqueue-source-queue"]?.stringValue == options.queue)
        #expect(try await storedUserData().isEmpty)
    }

    /// A key the store could not keep (PostgreSQL refuses NUL and keys over its index's limit)
    /// would fail the batch's transaction and bring the batch back forever: such a message is
    /// dead-lettered with the reason, and the messages beside it in the batch are stored.
    @Test func anIdempotencyKeyTooLongOrWithControlCharactersIsDeadLetteredAndItsBatchStored() async throws {
        try await broker.declare(AMQPTopology(queues: [AMQPQueue(name: options.queue)]))
        let tooLong = String(repeating: "k", count: SubmissionFactory.maxIdempotencyKeyBytes + 1)
        var longToken = message(Self.request("long"))
        longToken.properties.headers[IntakeOptions.clientTokenHeader] = .string(tooLong)
        await publish(message(Self.request("first")), longToken, message(Self.request("nul"), id: "a\u{0}b"), message(Self.request("second"), id: "m-3"))
        let intake = try await startIntake()
        defer { intake.cancel() }

        let deadLetterQueue = options.deadLetterQueue
        let dead = try await broker.wait { $0.messages(in: deadLetterQueue).count == 2 ? $0.messages(in: deadLetterQueue) : nil }
        try await waitUntilSettled()
        #expect(dead.map { try? XMLDocumentParser.parse($0.body).text("Operation", "UserData") } == ["long", "nul"])
        for letter in dead {
            #expect(letter.properties.headers["x-mediaqueue-error-code"]?.stringValue == CIError.Code.invalidArgument.rawValue)
            #expect(letter.properties.headers["x-mediaqueue-error-element"]?.stringValue == "ClientToken")
        }
        #expect(try await storedUserData() == ["first", "second"])
    }

    /// A received name can be longer than any sent one: the client repairs invalid UTF-8 into
    /// three bytes for each byte. Copied into the dead letter, it made one that could not be
    /// sent, and the message came back for ever; such properties are left out.
    @Test func aDeadLetterLeavesOutPropertiesTooLongToSendAgain() {
        var properties = AMQPProperties(contentType: "application/xml", messageID: String(repeating: "\u{FFFD}", count: 86), persistent: true)
        properties.headers["x-from-producer"] = "kept"
        properties.headers[String(repeating: "\u{FFFD}", count: 86)] = "a key that grew"
        let received = AMQPMessage(body: Array("not xml".utf8), properties: properties, deliveryTag: .none, redelivered: false, exchange: "", routingKey: options.queue)

        let letter = makeIntake(store: store).deadLetter(received, error: CIError(.invalidArgument, "Request: not XML", element: "Request"))
        #expect(letter.encodingProblem() == nil)
        #expect(letter.body == received.body)
        #expect(letter.properties.messageID == nil)
        #expect(letter.properties.contentType == "application/xml")
        #expect(letter.properties.headers["x-from-producer"] == nil)
        #expect(letter.properties.headers["x-mediaqueue-headers-dropped"] != nil)
        #expect(letter.properties.headers["x-mediaqueue-error-element"]?.stringValue == "Request")
    }

    /// A job's own TDMQ queue that no broker could declare: refused with the field named, not
    /// stored to fail every delivery.
    @Test func aJobNamingAQueueNoBrokerTakesIsDeadLetteredNamingIt() async throws {
        let intake = try await startIntake()
        defer { intake.cancel() }
        let name = String(repeating: "q", count: NotifyConfig.maxMqNameBytes + 1)
        let body = "<Request><Tag>Record</Tag><Input><Object>in.mp4</Object></Input><Operation/><CallBackType>TDMQ</CallBackType>"
            + "<CallBackMqConfig><MqMode>Queue</MqMode><MqName>\(name)</MqName><MqRegion>sh</MqRegion></CallBackMqConfig></Request>"
        await publish(message(Array(body.utf8), id: "long-mq-name"))

        let dead = try await broker.wait { $0.messages(in: options.deadLetterQueue).first }
        try await waitUntilSettled()
        #expect(dead.properties.messageID == "long-mq-name")
        #expect(dead.properties.headers["x-mediaqueue-error-element"]?.stringValue == "CallBackMqConfig.MqName")
        #expect(try await store.jobs(JobQuery(limit: 10)).isEmpty)
    }

    /// An empty message-id is no key: as one it would make every such message the same job.
    @Test func messagesWithAnEmptyMessageIDAreEachAJob() async throws {
        let intake = try await startIntake()
        defer { intake.cancel() }
        await publish(message(Self.request("one"), id: ""), message(Self.request("two"), id: ""))
        try await waitUntilSettled()
        #expect(try await storedUserData() == ["one", "two"])
    }

    @Test func aClientTokenHeaderIsTheKeyOfAMessageWhoseMessageIDIsEmpty() async throws {
        let intake = try await startIntake()
        defer { intake.cancel() }
        var tokened = message(Self.request("once"), id: "")
        tokened.properties.headers = [IntakeOptions.clientTokenHeader: .string("token-1")]
        await publish(tokened)
        try await waitUntilSettled()
        await publish(tokened)
        try await waitUntilSettled()
        #expect(try await storedUserData() == ["once"])
    }

    /// A broker under a resource alarm holds a connection's publishes: the stored submissions
    /// of a batch are acked before its dead letter goes out, so a connection dropped meanwhile
    /// does not bring them back as second jobs; the refused one waits for its dead letter.
    @Test func aBatchsStoredSubmissionsAreAckedWhileTheBrokerHoldsItsDeadLetter() async throws {
        try await broker.declare(AMQPTopology(queues: [AMQPQueue(name: options.queue)]))
        // In the queue before the intake starts: one batch.
        await publish(message(Self.request("first")), message(Array("not xml".utf8), id: "bad-1"), message(Self.request("second")))
        broker.blockPublishers(true)
        let intake = try await startIntake()
        defer { intake.cancel() }

        try await broker.wait { $0.blockedPublishes == 1 ? () : nil }
        #expect(try await storedUserData() == ["first", "second"])
        #expect(broker.snapshot.unacknowledged[options.queue] == 1, "only the refused one waits")
        broker.blockPublishers(false)
        try await waitUntilSettled()
        #expect(broker.snapshot.messages(in: options.deadLetterQueue).map(\.properties.messageID) == ["bad-1"])
        #expect(broker.snapshot.misuse.isEmpty)
    }

    /// A batch of refused messages alone is dead-lettered while the store fails.
    @Test func refusedMessagesAreDeadLetteredWhileTheStoreFails() async throws {
        try await broker.declare(AMQPTopology(queues: [AMQPQueue(name: options.queue)]))
        await publish(message(Array("not xml".utf8), id: "bad-1"))
        let intake = try await startIntake(store: CommitThenFailStore(store, commits: false))
        defer { intake.cancel() }
        try await waitUntilSettledOrPaused()
        #expect(broker.snapshot.messages(in: options.deadLetterQueue).map(\.properties.messageID) == ["bad-1"])
        #expect(broker.snapshot.messages(in: options.queue).isEmpty)
    }

    /// A producer's per-message TTL is for the job queue: the dead letter stays until read.
    @Test func aDeadLetterDoesNotKeepTheMessagesExpiration() async throws {
        let intake = try await startIntake()
        defer { intake.cancel() }
        var expiring = message(Array("not xml".utf8), id: "bad-ttl")
        expiring.properties.expiration = "60000"
        await publish(expiring)

        let dead = try await broker.wait { $0.messages(in: options.deadLetterQueue).first }
        #expect(dead.properties.messageID == "bad-ttl")
        #expect(dead.properties.expiration == nil)
    }

    /// A message whose own headers fill its frame leaves no room for the reason: its dead letter
    /// could not be sent, and the message came back forever. The headers are left out (saying
    /// so), the body and the reason kept.
    @Test func aMessageWhoseHeadersFillItsFrameIsDeadLetteredWithoutThem() async throws {
        let intake = try await startIntake()
        defer { intake.cancel() }
        var full = message(Array("not xml".utf8), id: "bad-full")
        full.properties.headers["x-padding"] = ""
        full.properties.headers["x-padding"] = .string(String(repeating: "p", count: AMQPProperties.maxEncodedSize() - full.properties.encodedSize))
        await publish(full, message(Array("not xml either".utf8), id: "bad-small"))

        let deadLetterQueue = options.deadLetterQueue
        let dead = try await broker.wait { $0.messages(in: deadLetterQueue).count == 2 ? $0.messages(in: deadLetterQueue) : nil }
        try await waitUntilSettled()
        #expect(dead.map(\.properties.messageID) == ["bad-full", "bad-small"])
        #expect(dead[0].body == full.body)
        #expect(dead[0].properties.headers["x-padding"] == nil)
        #expect(dead[0].properties.headers["x-mediaqueue-headers-dropped"]?.stringValue?.hasPrefix("\(full.properties.headers.encodedSize) bytes") == true)
        #expect(dead[0].properties.headers["x-mediaqueue-error-code"]?.stringValue == CIError.Code.invalidArgument.rawValue)
        #expect(dead[0].properties.headers["x-mediaqueue-error-element"]?.stringValue == "Request")
        #expect(dead[1].properties.headers["x-mediaqueue-headers-dropped"] == nil, "a message with room keeps its headers")
    }

    /// The broker nacks the dead letter: the refused message goes back to the queue (it is not
    /// settled), the stored ones beside it in the batch are acked and never become second jobs
    /// (they carry no message-id, so nothing else would stop that), and once the broker takes
    /// dead letters again the refused one lands there.
    @Test func aRefusedDeadLetterRequeuesOnlyItsMessage() async throws {
        let deadLetterQueue = options.deadLetterQueue
        broker.refusePublishes { $0.routingKey == deadLetterQueue }
        try await broker.declare(AMQPTopology(queues: [AMQPQueue(name: options.queue)]))
        // In the queue before the intake starts: one batch.
        await publish(message(Self.request("first")), message(Array("not xml".utf8)), message(Self.request("second")))
        let intake = try await startIntake()
        defer { intake.cancel() }

        // After the batch, the intake pauses (beside its purge timer's sleep) before the next.
        await clock.sleepers(atLeast: 2)
        let waiting = broker.snapshot.messages(in: options.queue)
        #expect(waiting.map(\.body) == [Array("not xml".utf8)])
        #expect(waiting.first?.redelivered == true)
        #expect(try await storedUserData() == ["first", "second"])

        broker.refusePublishes(nil)
        clock.advance(by: options.retryPause)
        let dead = try await broker.wait { $0.messages(in: deadLetterQueue).first }
        try await waitUntilSettled()
        #expect(dead.body == Array("not xml".utf8))
        #expect(try await storedUserData() == ["first", "second"], "each stored once")
        #expect(broker.snapshot.misuse.isEmpty)
    }

    /// A dead letter the broker holds back (it is away, or blocks its publishers) does not hold
    /// the intake's shutdown past `shutdownGrace`: the intake stops, and the submission whose
    /// dead letter was not confirmed goes back to its queue rather than being lost.
    @Test func aDeadLetterTheBrokerHoldsBackDoesNotHoldTheShutdownPastItsGrace() async throws {
        let intake = makeIntake(store: store)
        try await broker.declare(intake.topology)
        await publish(message(Array("not xml".utf8), id: "bad-1"))
        broker.blockPublishers(true)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let group = ServiceGroup(services: [intake], logger: logger)
        let running = Task { try await group.run() }
        defer { running.cancel() }
        try await broker.wait { $0.blockedPublishes == 1 ? () : nil }

        await group.triggerGracefulShutdown()
        try await moveClockUntilEnded(running, upTo: clock.now + .seconds(10))
        let snapshot = broker.snapshot
        #expect(snapshot.messages(in: options.queue).map(\.properties.messageID) == ["bad-1"], "back in its queue")
        #expect(snapshot.messages(in: options.deadLetterQueue).isEmpty)
        #expect(try await storedUserData().isEmpty)
    }

    /// A batch the store failed on after committing it (a lost `COMMIT` reply) is settled on what
    /// the store holds: its stored submissions (these without message-id) are answered and acked,
    /// not redelivered into second jobs, and the refused one of the batch is dead-lettered.
    @Test func aBatchStoredBeforeTheStoreFailedIsSettledAsStored() async throws {
        try await broker.declare(AMQPTopology(queues: [AMQPQueue(name: options.queue), AMQPQueue(name: "replies")]))
        // In the queue before the intake starts: one batch.
        await publish(message(Self.request("first"), replyTo: "replies"), message(Array("not xml".utf8)), message(Self.request("second")))
        let intake = try await startIntake(store: CommitThenFailStore(store))
        defer { intake.cancel() }

        try await waitUntilSettledOrPaused()
        #expect(broker.snapshot.messages(in: options.queue).isEmpty, "nothing goes back to the queue")
        #expect(try await storedUserData() == ["first", "second"], "each stored once")
        #expect(broker.snapshot.messages(in: options.deadLetterQueue).map(\.body) == [Array("not xml".utf8)])
        let reply = try #require(broker.snapshot.messages(in: "replies").first)
        let stored = try await store.jobs(JobQuery(limit: 10)).first { $0.userData == "first" }
        #expect(try XMLDocumentParser.parse(reply.body)["JobsDetail"]?.text("JobId") == stored?.id.rawValue)
        #expect(broker.snapshot.misuse.isEmpty)
    }

    /// A shutdown that comes while the intake asks whether a failed batch was stored (the store
    /// failed after committing it, and then on the first reads) does not give the batch back at
    /// once: it asks on for its shutdown grace, and the stored submission is acked, not left to be
    /// redelivered into a second job (it has no message-id).
    @Test func aShutdownDuringTheReadBackOfAFailedBatchAsksOnBeforeGivingTheBatchBack() async throws {
        try await stopWhileReadingBack(CommitThenFailStore(store, failingReads: 2), within: options.shutdownGrace)
        #expect(broker.snapshot.messages(in: options.queue).isEmpty, "not given back")
        #expect(broker.snapshot.unacknowledged[options.queue] ?? 0 == 0)
        #expect(try await storedUserData() == ["first"])
        #expect(broker.snapshot.misuse.isEmpty)
    }

    /// A read that does not answer while the intake stops (a database that hangs) ends with the
    /// shutdown's grace: the intake stops, and the batch goes back to its queue.
    @Test func aReadBackThatHangsDuringTheShutdownEndsWithItsGrace() async throws {
        // The grace, the pause after a batch given back, and the pause the shutdown cut short
        // (the clock may pass it before the intake sees the shutdown).
        try await stopWhileReadingBack(
            CommitThenFailStore(store, failingReads: 1, hangingReads: true), within: options.shutdownGrace + options.retryPause * 2
        )
        #expect(broker.snapshot.messages(in: options.queue).count == 1, "back in its queue")
        #expect(broker.snapshot.misuse.isEmpty)
    }

    /// A batch the store failed on before storing it goes back to the queue whole and is stored
    /// after the pause.
    @Test func aBatchTheStoreFailedOnBeforeStoringItIsStoredAfterThePause() async throws {
        try await broker.declare(AMQPTopology(queues: [AMQPQueue(name: options.queue)]))
        await publish(message(Self.request("first")), message(Self.request("second")))
        let intake = try await startIntake(store: CommitThenFailStore(store, commits: false))
        defer { intake.cancel() }

        // After the batch, the intake pauses (beside its purge timer's sleep) before the next.
        await clock.sleepers(atLeast: 2)
        #expect(broker.snapshot.messages(in: options.queue).map(\.redelivered) == [true, true])
        #expect(try await storedUserData() == [])

        clock.advance(by: options.retryPause)
        try await waitUntilSettled()
        #expect(try await storedUserData() == ["first", "second"])
        #expect(broker.snapshot.misuse.isEmpty)
    }

    /// An answer the broker refuses is only logged: the submission was stored, so its message is
    /// acked (redelivering it would make a second job of a message without message-id).
    @Test func aRefusedReplyStillSettlesTheStoredSubmission() async throws {
        broker.refusePublishes { $0.routingKey == "replies" }
        try await broker.declare(AMQPTopology(queues: [AMQPQueue(name: "replies")]))
        let intake = try await startIntake()
        defer { intake.cancel() }
        await publish(message(Self.request("answered"), replyTo: "replies"))
        try await waitUntilSettled()
        #expect(try await storedUserData() == ["answered"])
        #expect(broker.snapshot.messages(in: "replies").isEmpty)
    }

    /// With a linger, a lone message on an idle intake is stored at once; once batches hold
    /// several messages, the deliveries that arrive while the intake waits join its batch.
    @Test func aBusyIntakeLingersAndStoresWhatArrivesMeanwhileInOneBatch() async throws {
        var options = self.options
        options.linger = .milliseconds(5)
        let lingering = IntakeServiceTests(options: options)
        let intake = try await lingering.startIntake()
        defer { intake.cancel() }
        try await lingering.broker.declare(AMQPTopology(queues: [AMQPQueue(name: "replies")]))
        func replies(_ count: Int) async throws {
            try await lingering.broker.wait { $0.messages(in: "replies").count == count ? true : nil }
        }
        // Idle: stored without the clock moving.
        await lingering.publish(lingering.message(Self.request("a"), replyTo: "replies"))
        try await replies(1)
        // Two at once: a batch with company, still stored at once (the one before it was alone).
        await lingering.publish(
            lingering.message(Self.request("b"), replyTo: "replies"), lingering.message(Self.request("c"), replyTo: "replies")
        )
        try await replies(3)
        // Busy now: the next batch waits for more (purge timer and linger asleep).
        await lingering.publish(lingering.message(Self.request("d"), replyTo: "replies"))
        await lingering.clock.sleepers(atLeast: 2)
        await lingering.publish(lingering.message(Self.request("e"), replyTo: "replies"))
        // d held by the lingering intake, e in the queue: what the linger's end takes together.
        let queue = options.queue
        try await lingering.broker.wait { $0.unacknowledged[queue] == 1 && $0.messages(in: queue).count == 1 ? true : nil }
        #expect(lingering.broker.snapshot.messages(in: "replies").count == 3, "nothing stored while it lingers")
        lingering.clock.advance(by: options.linger)
        try await lingering.waitUntilSettled()
        try await replies(5)
        #expect(try await lingering.storedUserData() == ["a", "b", "c", "d", "e"])
    }

    /// A broker that drops the connection while the intake declares its queues (RabbitMQ does
    /// when a quorum queue cannot start in time) is asked again after a pause that doubles each
    /// time; the intake then consumes and stores what waited.
    @Test func aDeclareThatLosesTheConnectionIsTriedAgainAfterAGrowingPause() async throws {
        let intake = try await startIntake(losingConnectionDuringDeclares: 2)
        defer { intake.cancel() }
        await publish(message(Self.request("waited")))

        // The first try failed: the intake pauses (beside its purge timer's sleep).
        await clock.sleepers(atLeast: 2)
        #expect(broker.snapshot.consumers[options.queue] == nil)
        clock.advance(by: options.retryPause)
        // The second failed too: a pause twice as long, so one more retryPause leaves it asleep.
        await clock.sleepers(atLeast: 2)
        clock.advance(by: options.retryPause)
        #expect(clock.sleeping == 2)
        #expect(broker.snapshot.consumers[options.queue] == nil)
        clock.advance(by: options.retryPause)

        try await waitUntilSettled()
        #expect(try await storedUserData() == ["waited"])
        #expect(broker.snapshot.consumers[options.queue] == 1)
    }

    /// The broker ends the intake's consumer when its queue is deleted: after a pause (beside its
    /// purge timer's sleep) the intake declares the queue again, consumes it again and stores what
    /// producers send from then on.
    @Test func aDeletedIntakeQueueIsDeclaredAndConsumedAgainAfterAPause() async throws {
        let intake = try await startIntake()
        defer { intake.cancel() }
        let queue = options.queue
        try await broker.wait { $0.consumers[queue] == 1 ? true : nil }

        broker.delete(queue: queue)
        await clock.sleepers(atLeast: 2)
        #expect(broker.snapshot.ready[queue] == nil, "not declared again before the pause")
        clock.advance(by: options.retryPause)
        try await broker.wait { $0.ready[queue] != nil && $0.consumers[queue] == 1 ? true : nil }
        await publish(message(Self.request("after")))
        try await waitUntilSettled()
        #expect(try await storedUserData() == ["after"])
    }

    /// Once the intake has consumed, a broker that refuses its queue (an operator recreating it
    /// as another type, or a permission taken away meanwhile) is asked again after a growing
    /// pause, with the node shown not ready, instead of ending the service group and with it the
    /// node's running jobs.
    @Test func aQueueTheBrokerRefusesAfterTheIntakeConsumedItIsAskedForAgainWhileTheNodeIsNotReady() async throws {
        let intake = try await startIntake()
        defer { intake.cancel() }
        let queue = options.queue
        try await broker.wait { $0.consumers[queue] == 1 ? true : nil }

        broker.refuseNextDeclares(2)
        broker.delete(queue: queue)
        await clock.sleepers(atLeast: 2)
        clock.advance(by: options.retryPause)
        // Refused: shown, and asked again after a pause.
        await clock.sleepers(atLeast: 2)
        #expect(queueHealth.failure(after: Timestamp(milliseconds: 0))?.contains("PRECONDITION_FAILED") == true)
        clock.advance(by: options.retryPause)
        // Refused again: the pause doubles.
        await clock.sleepers(atLeast: 2)
        clock.advance(by: options.retryPause)
        #expect(clock.sleeping == 2)
        #expect(broker.snapshot.consumers[queue] == nil)
        clock.advance(by: options.retryPause)

        try await broker.wait { $0.ready[queue] != nil && $0.consumers[queue] == 1 ? true : nil }
        await publish(message(Self.request("after")))
        try await waitUntilSettled()
        #expect(try await storedUserData() == ["after"])
        #expect(queueHealth.failure(after: Timestamp(milliseconds: 0)) == nil, "consuming again, the node is ready")
    }
}
