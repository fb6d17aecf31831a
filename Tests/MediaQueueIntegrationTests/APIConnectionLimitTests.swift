import Foundation
import MediaQueueApp
import MediaQueueTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// With `MEDIAQUEUE_API_MAX_CONNECTIONS` connections open the API takes no more: the next one
/// waits in the kernel's accept queue, unanswered, until one of them closes, and is served then.
@Suite struct APIConnectionLimitTests {
    @Test(.timeLimit(.minutes(5))) func aConnectionBeyondTheLimitWaitsUntilAnotherCloses() async throws {
        let harness = try ServiceHarness {
            $0.anonymous = true
            $0.apiMaxConnections = 1
            // The held connection must not close on its own: under load this test may wait for
            // the pool long enough to meet the default minute.
            $0.apiIdleTimeoutSeconds = 3600
            // An address of its own: no other test's client (a probe of a stopped node's port that
            // this API now has) can take its one connection or join its accept queue.
            $0.httpAddress = Self.host + ":0"
        }
        let port = Mutex<Int?>(nil)
        let (_, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
        defer { service.cancel() }
        let listening = try await eventually("the API to listen") { port.withLock { $0 } }

        // Reads wait for as long as the test may run: at the start of the full suite the service
        // can wait tens of seconds for the cooperative pool before it answers.
        let held = try APIIdleTimeoutTests.connect(port: listening, host: Self.host, readTimeout: Self.readTimeout)
        #expect(try await Self.get("/healthz", on: held).hasPrefix("HTTP/1.1 200"))
        let next = try APIIdleTimeoutTests.connect(port: listening, host: Self.host, readTimeout: Self.readTimeout)
        defer { close(next) }
        try Self.send("/healthz", on: next)
        // The kernel finished its handshake; the API leaves it in the accept queue (a server that
        // took it would empty the queue at once, and this wait would never end).
        var seen: Int?
        do {
            try await eventually("the next connection to wait in the API's accept queue") {
                seen = try Self.acceptQueueLength(port: listening)
                return seen == 1
            }
        } catch {
            var byte: UInt8 = 0
            let heldRead = recv(held, &byte, 1, Int32(MSG_DONTWAIT))
            Issue.record("accept queue last seen: \(seen.map(String.init) ?? "no listening socket"); the held connection: \(heldRead == 0 ? "closed" : "open")")
            throw error
        }

        close(held)
        #expect(try await Self.response(on: next).hasPrefix("HTTP/1.1 200"))
        #expect(try Self.acceptQueueLength(port: listening) == 0)
    }

    static let host = "127.0.0.77"
    /// Below the test's time limit, so that a response that never comes fails the read first.
    static let readTimeout = 240

    /// Connections waiting to be accepted on the listening socket of `host`:`port`: Linux shows
    /// them as a listening socket's receive queue in /proc/net/tcp (the address's bytes reversed).
    static func acceptQueueLength(port: Int) throws -> Int? {
        let local = "4D00007F:" + String(format: "%04X", port)
        let table = String(decoding: try Self.readWhole("/proc/net/tcp"), as: UTF8.self)
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[1] == local, fields[3] == "0A" else { continue }
            return fields[4].split(separator: ":").last.flatMap { Int($0, radix: 16) }
        }
        return nil
    }

    /// A file read to its end: /proc files claim a size of 0, and a read by that size stops at
    /// the first page, which on a busy machine does not reach the listening socket's line.
    static func readWhole(_ path: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw POSIXError(.ENOENT) }
        defer { close(descriptor) }
        var content: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            guard count > 0 else { break }
            content += buffer[..<count]
        }
        return content
    }

    static func send(_ path: String, on descriptor: Int32) throws {
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard write(descriptor, request, request.count) == request.count else { throw POSIXError(.EIO) }
    }

    static func get(_ path: String, on descriptor: Int32) async throws -> String {
        try send(path, on: descriptor)
        return try await response(on: descriptor)
    }

    /// How a read of a response ended early: the server closed, or the read failed with `errno`
    /// (EAGAIN: the read timed out).
    enum ReadEnd: Error {
        case closed
        case failed(errno: Int32)
    }

    /// Reads one response with a `Content-Length` body (off the cooperative pool; the socket's
    /// receive timeout ends a read that never comes).
    static func response(on descriptor: Int32) async throws -> String {
        let text = await withCheckedContinuation { (continuation: CheckedContinuation<Result<String, ReadEnd>, Never>) in
            Thread {
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let text = String(decoding: received, as: UTF8.self)
                    if let end = text.range(of: "\r\n\r\n") {
                        let length = text[..<end.lowerBound].split(separator: "\r\n")
                            .first { $0.lowercased().hasPrefix("content-length:") }
                            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                        if text.utf8.distance(from: end.upperBound, to: text.endIndex) >= length { return continuation.resume(returning: .success(text)) }
                    }
                    let count = read(descriptor, &buffer, buffer.count)
                    guard count > 0 else { return continuation.resume(returning: .failure(count == 0 ? .closed : .failed(errno: errno))) }
                    received += buffer[..<count]
                }
            }.start()
        }
        return try text.get()
    }
}
