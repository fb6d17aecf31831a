import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MediaQueueApp
import MediaQueueTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Connections that send nothing, or stop in the middle of a request, are closed after the API's
/// idle timeout: held open by the thousand they would use up the process's descriptors.
@Suite struct APIIdleTimeoutTests {
    @Test(.timeLimit(.minutes(5))) func anIdleConnectionAndAStalledRequestAreClosedAndTheAPIGoesOn() async throws {
        let harness = try ServiceHarness {
            $0.anonymous = true
            $0.apiIdleTimeoutSeconds = 1
        }
        let port = Mutex<Int?>(nil)
        let (application, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
        defer { service.cancel() }
        let listening = try await eventually("the API to listen") { port.withLock { $0 } }
        _ = try await application.prepare()

        let idle = try Self.connect(port: listening, readTimeout: 120)
        let stalled = try Self.connect(port: listening, readTimeout: 120)
        let partial = Array("GET /\(harness.configuration.bucket)/queue HTTP/1.1\r\nHost: 127.0.0.1\r\n".utf8)
        #expect(write(stalled, partial, partial.count) == partial.count)
        // A read ends with 0 once the server closes the connection (-1: it did not within 120 s;
        // in the whole suite, on two cores, a 1-s idle timeout once took more than 60 s to act).
        let idleEnd = await Self.readUntilClosed(idle)
        #expect(idleEnd.received.isEmpty && idleEnd.end == 0, "the idle connection got nothing and was closed")
        let stalledEnd = await Self.readUntilClosed(stalled)
        #expect(stalledEnd.received.isEmpty && stalledEnd.end == 0, "the stalled request got no answer and was closed")

        let (_, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(listening)/\(harness.configuration.bucket)/queue")!)
        #expect((response as? HTTPURLResponse)?.statusCode == 200, "a request after them is served")
    }

    /// A connection to `host`:`port` whose reads fail after `readTimeout` seconds without data.
    static func connect(port: Int, host: String = "127.0.0.1", readTimeout: Int = 60) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard descriptor >= 0, connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        // A server that never closes makes a read fail after this, not hang the test. Generous:
        // in the whole suite on two cores a 1-s idle timeout once took more than 20 s to act.
        var limit = timeval(tv_sec: readTimeout, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        return descriptor
    }

    /// Reads until the peer closes the connection or a read fails (off the cooperative pool),
    /// then closes the descriptor: what was received, and the last read's result.
    static func readUntilClosed(_ descriptor: Int32) async -> (received: [UInt8], end: Int) {
        await withCheckedContinuation { (continuation: CheckedContinuation<([UInt8], Int), Never>) in
            Thread {
                var buffer = [UInt8](repeating: 0, count: 4096)
                var received: [UInt8] = []
                var result = 1
                while result > 0 {
                    result = read(descriptor, &buffer, buffer.count)
                    if result > 0 { received += buffer[..<result] }
                }
                close(descriptor)
                continuation.resume(returning: (received, result))
            }.start()
        }
    }
}
