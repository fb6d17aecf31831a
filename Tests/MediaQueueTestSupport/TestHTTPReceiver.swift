import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A small real HTTP/1.1 server on 127.0.0.1 for callback tests: keep-alive, one thread per
/// connection, every request recorded, and each answer chosen by the test.
///
/// Blocking POSIX sockets on threads of its own, so it never depends on the code under test.
public final class TestHTTPReceiver: Sendable {
    public struct Request: Sendable {
        public var method: String
        public var path: String
        /// Header names in lowercase.
        public var headers: [String: String]
        public var body: [UInt8]
        /// Which connection (counted from 0) carried it.
        public var connection: Int

        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public enum Reply: Sendable {
        /// Answer with this status, extra headers and body.
        case status(Int, headers: [String: String] = [:], body: String = "")
        /// Answer with this status and binary body (a file served for a download).
        case bytes(Int, body: [UInt8])
        /// Answer 200 with this body in chunked encoding, so no length is announced up front.
        case chunked([UInt8])
        /// Never answer; keep the connection open until the client gives up or the receiver stops.
        case hang
        /// Answer nothing and close the connection with a TCP reset.
        case reset
        /// Answer with this status and a `Content-Length` larger than the body sent, then close.
        case cutShort(Int, announced: Int, body: String)
        /// Answer with this status and a chunked body that never ends, until the client hangs up.
        case endless(Int)
    }

    private struct State {
        var requests: [Request] = []
        var connections: [Int32] = []
        var connectionCount = 0
        var inFlight = 0
        var mostInFlight = 0
        var stopped = false
    }

    public let port: UInt16
    private let listener: Int32
    private let state = Mutex(State())
    private let reply: @Sendable (Request, Int) -> Reply
    /// Signalled once the accept loop has closed the listener.
    private let listenerClosed = DispatchSemaphore(value: 0)

    /// Listens on `port` (0: any free port, or a `ReservedPort`'s); `reply` gets each request and its index (from 0).
    public init(port: UInt16 = 0, reply: @escaping @Sendable (Request, Int) -> Reply = { _, _ in .status(200) }) throws {
        let listener = try reusableSocket()
        var address = loopback(port: port)
        // A receiver stopped a moment ago may still hold the port: try for a while.
        var bound: Int32 = -1
        for _ in 0..<100 {
            bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound == 0 || errno != EADDRINUSE { break }
            usleep(20_000)
        }
        guard bound == 0, listen(listener, 128) == 0 else {
            let message = String(cString: strerror(errno))
            close(listener)
            throw ReceiverError(description: "bind/listen on 127.0.0.1:\(port): \(message)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.reply = reply
        self.listener = listener
        self.port = UInt16(bigEndian: actual.sin_port)
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    deinit { stop() }

    /// `http://127.0.0.1:<port><path>`.
    public func url(_ path: String = "/callback") -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Every request so far, in arrival order.
    public var requests: [Request] { state.withLock { $0.requests } }

    /// Connections accepted so far.
    public var connectionCount: Int { state.withLock { $0.connectionCount } }

    /// Requests being answered now: received, and their answer not yet written (a hanging one
    /// counts until its client gives up).
    public var inFlight: Int { state.withLock { $0.inFlight } }

    /// The most requests that were ever being answered at once.
    public var mostInFlight: Int { state.withLock { $0.mostInFlight } }

    /// Closes the listener and every connection (hanging ones included); when it returns, the
    /// port refuses connections.
    public func stop() {
        let (fds, first) = state.withLock { state -> ([Int32], Bool) in
            guard !state.stopped else { return ([], false) }
            state.stopped = true
            return (state.connections, true)
        }
        guard first else { return }
        // shutdown() wakes threads blocked in accept() or recv() on these sockets.
        shutdown(listener, Int32(SHUT_RDWR))
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
        listenerClosed.wait()
    }

    private func acceptLoop() {
        defer {
            close(listener)
            listenerClosed.signal()
        }
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            let index = state.withLock { state -> Int? in
                guard !state.stopped else { return nil }
                state.connections.append(fd)
                state.connectionCount += 1
                return state.connectionCount - 1
            }
            guard let index else {
                close(fd)
                return
            }
            let thread = Thread { [self] in serve(fd, connection: index) }
            thread.start()
        }
    }

    private func serve(_ fd: Int32, connection: Int) {
        defer {
            state.withLock { $0.connections.removeAll { $0 == fd } }
            close(fd)
        }
        var buffer: [UInt8] = []
        while true {
            guard let (head, bodyStart) = readHead(fd, &buffer) else { return }
            let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
            let requestLine = lines.first?.split(separator: " ") ?? []
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            buffer.removeFirst(bodyStart)
            while buffer.count < length {
                guard readMore(fd, &buffer) else { return }
            }
            let body = Array(buffer.prefix(length))
            buffer.removeFirst(length)
            let request = Request(
                method: requestLine.first.map(String.init) ?? "", path: requestLine.dropFirst().first.map(String.init) ?? "",
                headers: headers, body: body, connection: connection
            )
            let index = state.withLock { state -> Int in
                state.requests.append(request)
                state.inFlight += 1
                state.mostInFlight = max(state.mostInFlight, state.inFlight)
                return state.requests.count - 1
            }
            let answer = reply(request, index)
            let answered = { self.state.withLock { $0.inFlight -= 1 } }
            switch answer {
            case .hang:
                // Read (and drop) until the client hangs up or the receiver stops.
                while readMore(fd, &buffer) { buffer.removeAll() }
                answered()
                return
            case .reset:
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                answered()
                return
            case .status(let status, let extra, let text):
                let sent = write(fd, status: status, headers: extra, body: Array(text.utf8), headOnly: request.method == "HEAD")
                answered()
                guard sent else { return }
            case .bytes(let status, let body):
                let sent = write(fd, status: status, headers: [:], body: body)
                answered()
                guard sent else { return }
            case .chunked(let body):
                let sent = write(fd, status: 200, headers: [:], body: body, chunked: true)
                answered()
                guard sent else { return }
            case .cutShort(let status, let announced, let text):
                let head = "HTTP/1.1 \(status) Status\r\nContent-Length: \(announced)\r\n\r\n"
                _ = send(fd, bytes: Array((head + text).utf8))
                answered()
                return
            case .endless(let status):
                var sent = send(fd, bytes: Array("HTTP/1.1 \(status) Status\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
                let chunk = Array("4000\r\n".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 0x4000) + [13, 10]
                while sent { sent = send(fd, bytes: chunk) }
                answered()
                return
            }
        }
    }

    /// Sends one response (to a HEAD, only the head a GET would have); false when the client has gone.
    private func write(_ fd: Int32, status: Int, headers: [String: String], body: [UInt8], chunked: Bool = false, headOnly: Bool = false) -> Bool {
        var head = "HTTP/1.1 \(status) Status\r\nConnection: keep-alive\r\n"
        head += chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        var bytes = Array((head + "\r\n").utf8)
        if chunked {
            var offset = 0
            while offset < body.count {
                let end = min(body.count, offset + 16 * 1024)
                bytes += Array((String(end - offset, radix: 16) + "\r\n").utf8) + body[offset..<end] + [13, 10]
                offset = end
            }
            bytes += Array("0\r\n\r\n".utf8)
        } else if !headOnly {
            bytes += body
        }
        return send(fd, bytes: bytes)
    }

    /// Sends all of `bytes`; false when the client has gone.
    private func send(_ fd: Int32, bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return false }
            sent += written
        }
        return true
    }

    /// Reads until the end of a request head; returns it and where the body starts.
    private func readHead(_ fd: Int32, _ buffer: inout [UInt8]) -> ([UInt8], Int)? {
        let marker: [UInt8] = [13, 10, 13, 10]
        while true {
            if buffer.count >= 4 {
                for index in 0...(buffer.count - 4) where buffer[index..<index + 4].elementsEqual(marker) {
                    return (Array(buffer[..<index]), index + 4)
                }
            }
            guard readMore(fd, &buffer) else { return nil }
        }
    }

    private func readMore(_ fd: Int32, _ buffer: inout [UInt8]) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return false }
        buffer += chunk[..<count]
        return true
    }
}

/// A gate that reply closures wait at (they run on the receiver's own threads, so blocking
/// there holds only that request): shut until `open()`, so a test decides when an answer goes.
public final class Gate: Sendable {
    private let state = Mutex((open: false, waiting: [DispatchSemaphore]()))

    public init() {}

    /// Blocks the calling thread until the gate is open.
    public func wait() {
        let semaphore = DispatchSemaphore(value: 0)
        let isOpen = state.withLock { state -> Bool in
            if !state.open { state.waiting.append(semaphore) }
            return state.open
        }
        if !isOpen { semaphore.wait() }
    }

    public func open() {
        let waiting = state.withLock { state -> [DispatchSemaphore] in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for semaphore in waiting { semaphore.signal() }
    }
}

public struct ReceiverError: Error, CustomStringConvertible {
    public let description: String
}

/// A port held by a socket that is bound but does not listen: connections to it are refused, and
/// no connection can take it as its own port meanwhile (as one could a port that is merely free).
/// A `TestHTTPReceiver` may listen on it while it is held (both bind with `SO_REUSEADDR`, and
/// this one never listens).
public final class ReservedPort: Sendable {
    public let port: UInt16
    private let descriptor: Int32
    private let released = Mutex(false)

    public init() throws {
        let descriptor = try reusableSocket()
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else {
            let message = String(cString: strerror(errno))
            close(descriptor)
            throw ReceiverError(description: "reserving a port on 127.0.0.1: \(message)")
        }
        self.descriptor = descriptor
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { release() }

    /// Gives the port back.
    public func release() {
        guard released.withLock({ done in defer { done = true }; return !done }) else { return }
        close(descriptor)
    }
}

/// A TCP socket with `SO_REUSEADDR`: it may bind a port that a socket which does not listen holds.
private func reusableSocket() throws -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw ReceiverError(description: "socket: \(String(cString: strerror(errno)))") }
    var yes: Int32 = 1
    setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    return descriptor
}

/// 127.0.0.1:`port`.
private func loopback(port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    return address
}
