import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP client for webhook delivery, on libcurl: POSTs a body with headers and returns the
/// status, headers and (the start of) the body.
///
/// - Connect and total timeouts from the configuration (10 s and 30 s by default).
/// - Redirects are not followed; only `http` and `https`; no proxy.
/// - Keep-alive connections are reused per host (one connection cache for all requests).
/// - The SSRF guard (`AddressPolicy`) is applied to every resolved address before connecting.
/// - libcurl runs on one dedicated thread of the client's own (see `CurlMultiLoop`), never on
///   the cooperative pool; the thread starts with the first request and ends with `shutdown()`
///   or when the client is released.
public final class HTTPClient: Sendable {
    public let configuration: HTTPClientConfiguration
    private let loop: CurlMultiLoop
    private let nextID = Atomic<UInt64>(1)

    public init(configuration: HTTPClientConfiguration = HTTPClientConfiguration()) {
        self.configuration = configuration
        loop = CurlMultiLoop(configuration: configuration)
    }

    deinit { loop.stop() }

    /// Sends a POST whose answer is its status and headers (a callback's): the body is read up
    /// to `maxResponseBodyBytes` and the transfer ends there, and a body that fails after the
    /// whole head came (cut short, reset, too slow) does not fail the request. Throws
    /// `HTTPClientError` when no response came (timeout, refused address, connection failure),
    /// `CancellationError` when the task was cancelled; any status code is a response, not an
    /// error.
    public func post(_ request: HTTPRequest) async throws -> HTTPResponse {
        var request = request
        request.method = .post
        return try await send(request, sink: nil, headIsTheAnswer: true)
    }

    /// GETs `url` and writes a 2xx response's body to the file at `path` (created, or truncated
    /// if it exists; left in place whatever happens, for the caller to remove). Other statuses
    /// are answers, not errors: their body is kept in memory (`maxResponseBodyBytes`) and nothing
    /// is written. Throws `HTTPClientError` with `.tooLarge` when the body is longer than
    /// `maxBytes` (announced or as it arrives; the transfer stops there), `.timedOut` after
    /// `timeout`, and the other codes as `post` does.
    public func download(_ url: String, toFile path: String, maxBytes: Int, timeout: Duration) async throws -> HTTPDownload {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw HTTPClientError(.fileWrite, "cannot create the download file: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let sink = DownloadSink(descriptor: descriptor, maxBytes: maxBytes)
        let request = HTTPRequest(method: .get, url: url, body: [], timeout: timeout)
        let response = try await send(request, sink: sink)
        return HTTPDownload(response: response, bytesWritten: sink.written)
    }

    /// Sends a request of any method; a PUT with `upload` reads its body from that file region.
    /// Errors as `post`.
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let upload = request.upload else { return try await send(request, sink: nil) }
        let descriptor = open(upload.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw HTTPClientError(.fileWrite, "cannot open the upload file: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        return try await send(request, sink: nil, source: UploadSource(descriptor: descriptor, region: upload))
    }

    /// Like `download(_:toFile:maxBytes:timeout:)` for any GET (signed, with a `Range` header…),
    /// writing a 2xx body into the file at `path` from byte `offset` on (the file is created if
    /// needed, and truncated there).
    public func download(_ request: HTTPRequest, toFile path: String, at offset: Int, maxBytes: Int) async throws -> HTTPDownload {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0, ftruncate(descriptor, off_t(offset)) == 0, lseek(descriptor, off_t(offset), SEEK_SET) >= 0 else {
            if descriptor >= 0 { close(descriptor) }
            throw HTTPClientError(.fileWrite, "cannot open the download file: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let sink = DownloadSink(descriptor: descriptor, maxBytes: maxBytes)
        var get = request
        get.method = .get
        let response = try await send(get, sink: sink)
        return HTTPDownload(response: response, bytesWritten: sink.written)
    }

    private func send(_ request: HTTPRequest, sink: DownloadSink?, source: UploadSource? = nil, headIsTheAnswer: Bool = false) async throws -> HTTPResponse {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let configuration = self.configuration
        let loop = self.loop
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                loop.submit(CurlTransfer(
                    id: id, request: request, configuration: configuration, sink: sink, source: source, headIsTheAnswer: headIsTheAnswer,
                    continuation: continuation
                ))
                // Cancelled between the check and the submission: `onCancel`'s cancel may have
                // reached the loop first and found nothing to cancel; this one comes after.
                if Task.isCancelled { loop.cancel(id) }
            }
        } onCancel: {
            loop.cancel(id)
        }
    }

    /// Fails requests in flight with `.shutdown` and stops the thread; later requests fail at once.
    public func shutdown() {
        loop.stop()
    }
}
