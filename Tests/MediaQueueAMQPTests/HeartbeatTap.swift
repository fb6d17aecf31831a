import Foundation
import MediaQueueTestSupport
import Testing

/// A loopback TCP forwarder in front of the test broker that reads the AMQP frames passing each
/// way and notes every heartbeat frame and every connection it accepts, so a test can wait for
/// heartbeats as events instead of sleeping through an idle period.
final class HeartbeatTap: Sendable {
    let port: Int
    private let process: ChildProcess

    init(brokerURL: String) async throws {
        let target = try #require(URLComponents(string: brokerURL)?.port, "the broker URL names a port")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("heartbeat-tap")).path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let script = folder + "/tap.py"
        try Self.script.write(toFile: script, atomically: true, encoding: .utf8)
        let log = folder + "/tap.log"
        process = try ChildProcess("/usr/bin/env", ["python3", "-u", script, String(target)], environment: [:], logPath: log)
        port = try await eventually("the heartbeat tap to listen") {
            Self.lines(log).first.flatMap { Int($0) }
        }
    }

    /// The broker URL with the tap's port in place of the broker's.
    func url(for brokerURL: String) throws -> String {
        var components = try #require(URLComponents(string: brokerURL))
        components.port = port
        return try #require(components.string)
    }

    /// Heartbeat frames seen so far from the client to the broker.
    var heartbeatsToBroker: Int { Self.lines(process.logPath).filter { $0 == "heartbeat to broker" }.count }
    /// Heartbeat frames seen so far from the broker to the client.
    var heartbeatsToClient: Int { Self.lines(process.logPath).filter { $0 == "heartbeat to client" }.count }
    /// Client connections accepted so far.
    var connections: Int { Self.lines(process.logPath).filter { $0 == "connection" }.count }

    func stop() async {
        await process.stop()
    }

    private static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    // Frames are type (1 byte), channel (2), payload size (4), payload, end (1); heartbeats are
    // type 8. The client's side starts with the 8-byte protocol header.
    static let script = """
        import os, socket, sys, threading, time
        target = int(sys.argv[1])
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        print(listener.getsockname()[1])
        lock = threading.Lock()

        def note(line):
            with lock:
                print(line, flush=True)

        \(PythonScripts.shutDown)

        def pipe(source, sink, direction, header):
            pending = bytearray()
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    sink.sendall(data)
                    pending += data
                    if header:
                        if len(pending) < header:
                            continue
                        del pending[:header]
                        header = 0
                    while len(pending) >= 7:
                        size = int.from_bytes(pending[3:7], "big")
                        if len(pending) < size + 8:
                            break
                        if pending[0] == 8:
                            note("heartbeat " + direction)
                        del pending[:size + 8]
            except OSError:
                pass
            shut_down(source, sink)

        def serve(client):
            note("connection")
            upstream = socket.create_connection(("127.0.0.1", target))
            threading.Thread(target=pipe, args=(upstream, client, "to client", 0), daemon=True).start()
            pipe(client, upstream, "to broker", 8)

        \(PythonScripts.endWithParent)
        while True:
            client, _ = listener.accept()
            threading.Thread(target=serve, args=(client,), daemon=True).start()
        """
}
