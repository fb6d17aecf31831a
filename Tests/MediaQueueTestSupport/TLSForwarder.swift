import Foundation

/// An HTTPS front for a plain test server: Python's `ssl` terminates TLS on a loopback port with
/// a certificate from a throwaway test CA (`scripts/make-test-tls.sh`) and forwards the bytes to
/// `targetPort`, so a `TestHTTPReceiver` records what arrives over HTTPS. The server is not ours,
/// so a TLS check in the client is tested against a stack we did not write.
public final class TLSForwarder: Sendable {
    /// The test CA's certificate (PEM): what a client must trust to accept the server.
    public let caFile: String
    public let port: Int
    private let process: ChildProcess

    public init(targetPort: Int) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("tls")).path
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        _ = try await runCommand(repository.appendingPathComponent("scripts/make-test-tls.sh").path, [folder])
        let script = folder + "/forward.py"
        try Self.script.write(toFile: script, atomically: true, encoding: .utf8)
        let log = folder + "/forward.log"
        process = try ChildProcess(
            "/usr/bin/env", ["python3", "-u", script, folder + "/server.pem", folder + "/server.key", String(targetPort)],
            environment: [:], logPath: log
        )
        caFile = folder + "/ca.pem"
        port = try await eventually("the TLS forwarder to listen") {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").first.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        }
    }

    /// `https://127.0.0.1:<port><path>` (the certificate names 127.0.0.1 and localhost).
    public func url(_ path: String = "/callback", host: String = "127.0.0.1") -> String {
        "https://\(host):\(port)\(path)"
    }

    /// Handshakes the server refused or that failed (a client that did not trust it), so far.
    public var failedHandshakes: Int {
        let text = (try? String(contentsOfFile: process.logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.hasPrefix("handshake failed") }.count
    }

    public func stop() async {
        await process.stop()
    }

    static let script = """
        import os, socket, ssl, sys, threading, time
        cert, key, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        print(listener.getsockname()[1])

        \(PythonScripts.shutDown)

        def pipe(source, sink):
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    sink.sendall(data)
            except OSError:
                pass
            shut_down(source, sink)

        def serve(raw):
            try:
                tls = context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError) as error:
                print("handshake failed", error)
                raw.close()
                return
            upstream = socket.create_connection(("127.0.0.1", target))
            threading.Thread(target=pipe, args=(upstream, tls), daemon=True).start()
            pipe(tls, upstream)

        \(PythonScripts.endWithParent)
        while True:
            raw, _ = listener.accept()
            threading.Thread(target=serve, args=(raw,), daemon=True).start()
        """
}
