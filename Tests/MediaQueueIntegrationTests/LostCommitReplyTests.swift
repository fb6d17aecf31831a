import Foundation
import Logging
import MediaQueueApp
import MediaQueueCore
import MediaQueuePostgres
import MediaQueueTestSupport
import MediaQueueXML
import PostgresNIO
import Testing

/// The intake on PostgreSQL when the reply to its `COMMIT` is lost: the server stored the jobs,
/// the connection drops before the node hears so, and the node cannot tell from the error.
@Suite struct LostCommitReplyTests {
    @Test func aSubmissionWithoutMessageIDWhoseCommitReplyIsLostIsOneJob() async throws {
        let databaseURL = try await TestDatabase.create()
        let forwarder = try await CommitReplyDropper(databaseURL: databaseURL)
        defer { Task { await forwarder.stop() } }
        // The lost transaction also claimed the job for this node's dispatcher. A lease shorter
        // than the default minute, so that a node which did not learn the claim committed fails
        // the attempts check below sooner; long enough that renewals held up on a loaded machine
        // (the whole suite runs at once) do not let it end while the job runs (5 s once did).
        let harness = try ServiceHarness { $0.leaseSeconds = 20 }
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let view = try PostgresJobStore(url: databaseURL, logger: harness.logger)
        let store = try PostgresJobStore(url: forwarder.databaseURL, logger: harness.logger)
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService(store: store)
        defer { service.cancel() }
        try await harness.waitForIntake()

        try forwarder.arm()
        try await harness.publish(mediaInfoRequest(userData: "once"))
        try await eventually("the reply to the intake's COMMIT to be dropped") { forwarder.droppedReplies == 1 }
        let event = try #require(try await harness.receive(1, from: events).first)
        #expect(event.xml?["JobsDetail"]?.text("Operation", "UserData") == "once")

        // Batches are stored in order, and a message that goes back to the queue is delivered
        // again before later ones: once a later message's job is stored, a second job of the
        // first would be stored too.
        try await harness.publish(mediaInfoRequest(userData: "after"))
        try await eventually("the later message's job to be stored") {
            try await view.jobs(JobQuery(limit: 10)).contains { $0.userData == "after" }
        }
        let jobs = try await view.jobs(JobQuery(limit: 10))
        #expect(jobs.compactMap(\.userData).sorted() == ["after", "once"], "the first message must not become a second job")
        let once = try #require(jobs.first { $0.userData == "once" })
        #expect(once.attempts == 1, "the node must run the job its lost transaction claimed, not wait for the lease to end")
    }

    /// The answer lost on the way, or replaced by a FATAL error (as when an administrator ends
    /// the server process while the commit is done but not yet reported): neither says whether
    /// the transaction committed, so the store asks.
    @Test(arguments: [CommitReplyDropper.Loss.answer, .fatalAnswer])
    func aStoreCallWhoseCommitAnswerIsLostReturnsWhatItCommitted(_ loss: CommitReplyDropper.Loss) async throws {
        let (forwarder, store, view) = try await Self.storeBehindForwarder()
        defer { Task { await forwarder.stop() } }
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 1)))

        try forwarder.arm(loss)
        let (outcomes, claim) = try await store.submit([Submission(idempotencyKey: nil, jobs: [Self.job(queue)])], thenClaim: Self.claim)

        #expect(forwarder.droppedReplies == 1)
        #expect(forwarder.fatalAnswers == (loss == .fatalAnswer ? 1 : 0))
        guard case .created(let created) = try #require(outcomes.first) else { throw TimedOut(description: "not created: \(outcomes)") }
        #expect(claim.jobs.map(\.id) == created.map(\.id), "the jobs the lost transaction claimed are this caller's to run")
        let stored = try await view.jobs(JobQuery(limit: 10))
        #expect(stored.map(\.id) == created.map(\.id))
        #expect(stored.first?.state == .running && stored.first?.lease?.owner == "node")
    }

    /// The answer is lost and the server cannot be reached to ask how the transaction ended: the
    /// store asks again until its patience is over, then fails rather than waiting for ever. The
    /// jobs are stored all the same; the intake reads back what a failed batch stored.
    @Test func aStoreCallWhoseCommitAnswerIsLostFailsWhenTheServerCannotBeAsked() async throws {
        let (forwarder, store, view) = try await Self.storeBehindForwarder()
        defer { Task { await forwarder.stop() } }
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 1)))

        try forwarder.arm(.answerThenUnreachable)
        let failure = await #expect(throws: PostgresStoreError.self) {
            try await store.submit([Submission(idempotencyKey: nil, jobs: [Self.job(queue)])], thenClaim: Self.claim)
        }
        #expect(failure?.sqlState == nil, "the call fails with the lost connection's error: \(failure.map { "\($0)" } ?? "")")
        #expect(forwarder.droppedReplies == 1)
        #expect(forwarder.refusedConnections >= 2, "the store gave up without asking again")
        #expect(try await view.jobs(JobQuery(limit: 10)).count == 1)
    }

    /// The answer is lost and the server answers the question with "unknown" (`pg_xact_status`
    /// gives NULL for a transaction too old to remember): the store does not take that for a
    /// commit. The call fails at once, without waiting out its patience, and the jobs are stored
    /// all the same, as when the server cannot be asked.
    @Test func aStoreCallWhoseCommitAnswerIsLostFailsWhenTheServerNoLongerKnowsTheTransaction() async throws {
        // The only server here remembers every recent transaction: this database forgets them,
        // through a `pg_xact_status` that its search path finds before the built-in one.
        let (forwarder, store, view) = try await Self.storeBehindForwarder { name in [
            "CREATE SCHEMA forgetful",
            "CREATE FUNCTION forgetful.pg_xact_status(xid8) RETURNS text LANGUAGE sql AS $$ SELECT NULL::text $$",
            "ALTER DATABASE \(name) SET search_path = public, forgetful, pg_catalog",
        ] }
        defer { Task { await forwarder.stop() } }
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 1)))

        try forwarder.arm(.answer)
        let failure = await #expect(throws: PostgresStoreError.self) {
            try await store.submit([Submission(idempotencyKey: nil, jobs: [Self.job(queue)])], thenClaim: Self.claim)
        }
        #expect(failure?.sqlState == nil, "the call fails with the lost connection's error: \(failure.map { "\($0)" } ?? "")")
        #expect(forwarder.droppedReplies == 1)
        #expect(forwarder.refusedConnections == 0, "the server was reachable and answered")
        #expect(try await view.jobs(JobQuery(limit: 10)).count == 1)
    }

    /// The connection is lost while the server carries out a `COMMIT` that takes longer than the
    /// store's 8 s of patience (a deferred trigger here; a wait for a synchronous standby in
    /// production). The server keeps saying it is in progress, so the store waits for its end
    /// and returns what it committed instead of failing a stored submission.
    @Test(.timeLimit(.minutes(3))) func aStoreCallWhoseLostCommitTakesLongIsWaitedForWhileTheServerSaysItIsInProgress() async throws {
        let (forwarder, store, view) = try await Self.storeBehindForwarder()
        defer { Task { await forwarder.stop() } }
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 1)))
        try await TestDatabase.execute([
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(12); RETURN NULL; END $$",
            "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON jobs DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
        ], on: forwarder.databaseURL)

        try forwarder.arm(.whileCommitting)
        let (outcomes, claim) = try await store.submit([Submission(idempotencyKey: nil, jobs: [Self.job(queue)])], thenClaim: Self.claim)

        #expect(forwarder.droppedWhileCommitting == 1)
        guard case .created(let created) = try #require(outcomes.first) else { throw TimedOut(description: "not created: \(outcomes)") }
        #expect(claim.jobs.map(\.id) == created.map(\.id))
        #expect(try await view.jobs(JobQuery(limit: 10)).map(\.id) == created.map(\.id))
    }

    @Test func aStoreCallWhoseCommitNeverArrivedFailsAndStoresNothing() async throws {
        let (forwarder, store, view) = try await Self.storeBehindForwarder()
        defer { Task { await forwarder.stop() } }
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: MediaQueue(bucket: "", name: "", createTime: Timestamp(seconds: 1)))
        let submission = Submission(idempotencyKey: nil, jobs: [Self.job(queue)])

        // The forwarder keeps the server's side open: its transaction stays open, holding the
        // queue's row, until the store ends it.
        try forwarder.arm(.request)
        let failure = await #expect(throws: PostgresStoreError.self) { try await store.submit([submission], thenClaim: Self.claim) }
        #expect(failure?.sqlState == nil, "the call fails with the lost connection's error: \(failure.map { "\($0)" } ?? "")")
        #expect(forwarder.heldCommits == 1)
        try await eventually("the server to end the held transaction's connection") { forwarder.endedHeldConnections == 1 }
        #expect(try await view.jobs(JobQuery(limit: 10)).isEmpty)

        // The queue's row is free again: the submission, sent again, is stored once.
        let (outcomes, _) = try await store.submit([submission], thenClaim: Self.claim)
        guard case .created(let created) = try #require(outcomes.first) else { throw TimedOut(description: "not created: \(outcomes)") }
        #expect(try await view.jobs(JobQuery(limit: 10)).map(\.id) == created.map(\.id))
    }

    /// A store whose connections go through a new `CommitReplyDropper` to a new database, and
    /// one that reads that database directly.
    /// `preparing`: statements to run on the new database first, given its name.
    static func storeBehindForwarder(
        preparing: (String) -> [String] = { _ in [] }
    ) async throws -> (CommitReplyDropper, store: PostgresJobStore, view: PostgresJobStore) {
        let databaseURL = try await TestDatabase.create()
        let statements = preparing(String(URLComponents(string: databaseURL)?.path.dropFirst() ?? ""))
        if !statements.isEmpty { try await TestDatabase.execute(statements, on: databaseURL) }
        let forwarder = try await CommitReplyDropper(databaseURL: databaseURL)
        let logger = Logger(label: "lost-commit")
        return (
            forwarder,
            try PostgresJobStore(url: forwarder.databaseURL, logger: logger),
            try PostgresJobStore(url: databaseURL, logger: logger)
        )
    }

    static let claim = ClaimRequest(owner: "node", now: Timestamp(seconds: 2), leaseUntil: Timestamp(seconds: 3_000_000_000), limit: 10)

    static func job(_ queue: MediaQueue) -> Job {
        Job(
            bucket: queue.bucket, queueID: queue.id, tag: "Snapshot", jobLevel: 0,
            input: XMLTree("Input", children: [XMLTree("Object", text: "in/a.mp4")]),
            operation: XMLTree("Operation", children: [XMLTree("UserData", text: "lost-commit")]),
            callback: CallbackOverride(), creationTime: Timestamp(seconds: 2)
        )
    }
}

/// A loopback forwarder to the test PostgreSQL server (plain text, `sslmode=disable`) that, once
/// armed, drops the client's connection at the `COMMIT` of one transaction that inserted jobs:
/// after the server committed, instead of passing its answer on (`.answer`), or sending a FATAL
/// error in its place (`.fatalAnswer`), or dropping it and then closing every new connection
/// (`.answerThenUnreachable`), or before the `COMMIT` reaches the server, whose side it then
/// keeps open (`.request`). Python, a stack we did not write.
final class CommitReplyDropper: Sendable {
    let databaseURL: String
    private let armFile: String
    private let process: ChildProcess

    init(databaseURL target: String) async throws {
        var components = try #require(URLComponents(string: target))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("commit-dropper")).path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let script = folder + "/forward.py"
        try Self.script.write(toFile: script, atomically: true, encoding: .utf8)
        armFile = folder + "/armed"
        let log = folder + "/forward.log"
        process = try ChildProcess(
            "/usr/bin/env", ["python3", "-u", script, components.host ?? "127.0.0.1", String(components.port ?? 5432), armFile],
            environment: [:], logPath: log
        )
        let port = try await eventually("the forwarder to listen") {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").first.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        }
        components.host = "127.0.0.1"
        components.port = port
        databaseURL = try #require(components.string)
    }

    enum Loss: String {
        case answer, fatalAnswer = "fatal", answerThenUnreachable = "unreachable", request, whileCommitting = "committing"
    }

    /// The next transaction that inserts jobs loses its `COMMIT`'s answer, or the `COMMIT` itself.
    func arm(_ loss: Loss = .answer) throws {
        try Data(loss.rawValue.utf8).write(to: URL(fileURLWithPath: armFile))
    }

    var droppedReplies: Int { logLines(startingWith: "dropped") }
    /// Dropped answers replaced by a FATAL error.
    var fatalAnswers: Int { logLines(startingWith: "dropped the reply to a COMMIT and answered FATAL") }
    var heldCommits: Int { logLines(startingWith: "held") }
    /// Client connections closed just after their `COMMIT` went to the server.
    var droppedWhileCommitting: Int { logLines(startingWith: "closed the client after its COMMIT") }
    /// Held connections whose server side the server closed.
    var endedHeldConnections: Int { logLines(startingWith: "ended") }
    /// Connections closed unanswered once the server became unreachable.
    var refusedConnections: Int { logLines(startingWith: "refused") }

    private func logLines(startingWith prefix: String) -> Int {
        let text = (try? String(contentsOfFile: process.logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.hasPrefix(prefix) }.count
    }

    func stop() async {
        await process.stop()
    }

    // The SQL texts travel NUL-terminated in the client's messages. The last bytes of the
    // previous read are kept so that a message split between two reads is still recognised, and
    // dropped once recognised, so that it is not recognised twice.
    static let script = """
        import os, socket, sys, threading, time
        host, port, arm = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        print(listener.getsockname()[1], flush=True)
        lock = threading.Lock()
        # Set once the server is to be unreachable: every new connection is closed at once.
        refusing = threading.Event()
        # An ErrorResponse as the server sends it when an administrator ends the backend.
        fields = b"SFATAL\\0VFATAL\\0C57P01\\0Mterminating connection due to administrator command\\0\\0"
        fatal = b"E" + (len(fields) + 4).to_bytes(4, "big") + fields

        def serve(client):
            upstream = socket.create_connection((host, port))
            state = {"inserted": False, "dropping": False, "holding": False, "tail": b""}

            def client_to_server():
                try:
                    while True:
                        data = client.recv(65536)
                        if not data:
                            break
                        seen = state["tail"] + data
                        state["tail"] = seen[-64:]
                        if b"INSERT INTO jobs (" in seen:
                            state["inserted"] = True
                            state["tail"] = b""
                        if b"ROLLBACK\\0" in seen:
                            state["inserted"] = False
                            state["tail"] = b""
                        if b"COMMIT\\0" in seen:
                            state["tail"] = b""
                            if state["inserted"]:
                                with lock:
                                    if os.path.exists(arm):
                                        with open(arm) as f:
                                            mode = f.read().strip()
                                        os.remove(arm)
                                        if mode == "request":
                                            state["holding"] = True
                                        else:
                                            state["dropping"] = mode
                            state["inserted"] = False
                        if state["dropping"] == "committing":
                            upstream.sendall(data)
                            print("closed the client after its COMMIT", flush=True)
                            client.shutdown(socket.SHUT_RDWR)
                            client.close()
                            return
                        if state["holding"]:
                            print("held a COMMIT", flush=True)
                            client.shutdown(socket.SHUT_RDWR)
                            client.close()
                            return
                        upstream.sendall(data)
                except OSError:
                    pass
                try:
                    upstream.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

            def server_to_client():
                try:
                    while True:
                        data = upstream.recv(65536)
                        if not data:
                            break
                        if state["dropping"] == "fatal":
                            client.sendall(fatal)
                            print("dropped the reply to a COMMIT and answered FATAL", flush=True)
                            break
                        if state["dropping"]:
                            print("dropped the reply to a COMMIT", flush=True)
                            if state["dropping"] == "unreachable":
                                refusing.set()
                            break
                        if not state["holding"]:
                            client.sendall(data)
                except OSError:
                    pass
                if state["holding"]:
                    print("ended by the server: a held connection", flush=True)
                for end in (client, upstream):
                    try:
                        end.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    end.close()

            threading.Thread(target=client_to_server, daemon=True).start()
            threading.Thread(target=server_to_client, daemon=True).start()

        \(PythonScripts.endWithParent)
        while True:
            accepted, _ = listener.accept()
            if refusing.is_set():
                print("refused a connection", flush=True)
                accepted.close()
                continue
            threading.Thread(target=serve, args=(accepted,), daemon=True).start()
        """
}
