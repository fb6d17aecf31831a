import Foundation
import MediaQueueApp
import MediaQueueCore
import MediaQueuePostgres
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// The intake on PostgreSQL when the reply to its `COMMIT` is lost: the server stored the jobs,
/// the connection drops before the node hears so, and the node cannot tell from the error.
@Suite struct LostCommitReplyTests {
    @Test func aSubmissionWithoutMessageIDWhoseCommitReplyIsLostIsOneJob() async throws {
        let databaseURL = try await TestDatabase.create()
        let forwarder = try await CommitReplyDropper(databaseURL: databaseURL)
        defer { Task { await forwarder.stop() } }
        // The lost transaction also claimed the job for this node's dispatcher, which never heard
        // so: the job runs once that lease ends.
        let harness = try ServiceHarness { $0.leaseSeconds = 5 }
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
    }
}

/// A loopback forwarder to the test PostgreSQL server (plain text, `sslmode=disable`) that, once
/// armed, lets one transaction that inserted jobs commit and then drops the connection instead of
/// passing the server's reply to the `COMMIT` on (Python, a stack we did not write).
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

    /// The next transaction that inserts jobs loses its `COMMIT`'s reply.
    func arm() throws {
        try Data().write(to: URL(fileURLWithPath: armFile))
    }

    var droppedReplies: Int {
        let text = (try? String(contentsOfFile: process.logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.hasPrefix("dropped") }.count
    }

    func stop() async {
        await process.stop()
    }

    // The SQL texts travel NUL-terminated in the client's messages. The last bytes of the
    // previous read are kept so that an insert's long message split between two reads is still
    // recognised; `COMMIT` and `ROLLBACK` are short messages of their own.
    static let script = """
        import os, socket, sys, threading, time
        host, port, arm = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        print(listener.getsockname()[1], flush=True)
        lock = threading.Lock()

        def serve(client):
            upstream = socket.create_connection((host, port))
            state = {"inserted": False, "dropping": False, "tail": b""}

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
                        if b"ROLLBACK\\0" in data:
                            state["inserted"] = False
                        if b"COMMIT\\0" in data:
                            if state["inserted"]:
                                with lock:
                                    if os.path.exists(arm):
                                        os.remove(arm)
                                        state["dropping"] = True
                            state["inserted"] = False
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
                        if state["dropping"]:
                            print("dropped the reply to a COMMIT", flush=True)
                            break
                        client.sendall(data)
                except OSError:
                    pass
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
            threading.Thread(target=serve, args=(accepted,), daemon=True).start()
        """
}
