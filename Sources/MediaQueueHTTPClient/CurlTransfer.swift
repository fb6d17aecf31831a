import CCurl

#if canImport(Glibc)
import Glibc
#endif

/// One request on its way through libcurl: what to send, what came back, and the continuation
/// of the task waiting for it.
///
/// `@unchecked Sendable`: it is created by the calling task and handed to the loop thread
/// through the mailbox lock; from then on only the loop thread touches its mutable state
/// (libcurl's callbacks run on that thread, inside `curl_multi_perform`), until the thread
/// resumes the continuation with a value copy and forgets it.
final class CurlTransfer: @unchecked Sendable {
    let id: UInt64
    let request: HTTPRequest
    let configuration: HTTPClientConfiguration
    /// Where a download's 2xx body goes; nil for POSTs (the body is kept in memory).
    let sink: DownloadSink?
    /// Where a PUT's body comes from; nil for every other request, and for a PUT of `body`.
    let source: UploadSource?
    /// Only the status and headers matter (`HTTPClient.post`): the body is read up to its limit,
    /// and its failure after a complete head is no failure of the request.
    let headIsTheAnswer: Bool
    private var continuation: CheckedContinuation<HTTPResponse, any Error>?

    // Filled by libcurl's callbacks on the loop thread.
    var status = 0
    var headers: [HTTPHeader] = []
    var body: [UInt8] = []
    /// Whether the final response's head (status line and headers, up to their empty line) came.
    var headComplete = false
    /// Set when the SSRF guard refused an address; the transfer then fails to connect.
    var refusals: [String] = []

    /// libcurl's explanation of a failure (`CURLOPT_ERRORBUFFER`); owned here, freed in deinit,
    /// and set on the easy handle only while this transfer uses it.
    let errorBuffer: UnsafeMutablePointer<CChar>
    /// The request headers as libcurl wants them; freed when the transfer ends.
    var headerList: UnsafeMutablePointer<curl_slist>?

    init(
        id: UInt64, request: HTTPRequest, configuration: HTTPClientConfiguration, sink: DownloadSink? = nil,
        source: UploadSource? = nil, headIsTheAnswer: Bool = false, continuation: CheckedContinuation<HTTPResponse, any Error>
    ) {
        self.headIsTheAnswer = headIsTheAnswer
        self.id = id
        self.request = request
        self.configuration = configuration
        self.sink = sink
        self.source = source ?? (request.method == .put ? UploadSource(bytes: request.body) : nil)
        self.continuation = continuation
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        if let headerList { curl_slist_free_all(headerList) }
        errorBuffer.deallocate()
    }

    /// Resumes the waiting task once; later calls do nothing.
    func complete(_ result: Result<HTTPResponse, any Error>) {
        if let headerList {
            curl_slist_free_all(headerList)
            self.headerList = nil
        }
        continuation?.resume(with: result)
        continuation = nil
    }

    /// libcurl's error text for this transfer, if it wrote one.
    var curlMessage: String {
        errorBuffer.pointee == 0 ? "" : String(cString: errorBuffer)
    }

    /// Turns a failed transfer's `CURLcode` into the client's error: the one place where C
    /// codes become Swift errors.
    func error(for code: CURLcode) -> HTTPClientError {
        let detail = curlMessage.isEmpty ? String(cString: curl_easy_strerror(code)) : curlMessage
        if !refusals.isEmpty, code == CURLE_COULDNT_CONNECT {
            return HTTPClientError(.addressRefused, refusals.joined(separator: "; "))
        }
        if let readError = source?.readError {
            return HTTPClientError(.fileWrite, "cannot read the upload file: \(String(cString: strerror(readError)))")
        }
        if let sink {
            if code == CURLE_FILESIZE_EXCEEDED || sink.exceeded {
                return HTTPClientError(.tooLarge, "the body is longer than the limit of \(sink.maxBytes) bytes")
            }
            if let writeError = sink.writeError {
                return HTTPClientError(.fileWrite, "cannot write the download file: \(String(cString: strerror(writeError)))")
            }
        }
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            // libcurl ends a transfer under its low-speed limit with the timeout's code.
            if configuration.stallTimeout != nil, detail.contains("too slow") { return HTTPClientError(.stalled, detail) }
            return HTTPClientError(.timedOut, detail)
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return HTTPClientError(.resolveFailed, detail)
        case CURLE_COULDNT_CONNECT:
            return HTTPClientError(.connectFailed, detail)
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return HTTPClientError(.invalidURL, detail)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            return HTTPClientError(.tls, detail)
        default:
            return HTTPClientError(.transport, detail)
        }
    }

    // MARK: libcurl callbacks (C function pointers: they capture nothing and find the transfer
    // through the context pointer, an unretained reference that the loop keeps alive while the
    // easy handle works for it)

    static let writeBody: CCurl_data_callback = { data, size, count, context in
        let length = size * count
        guard let data, let context else { return length }
        let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
        if let sink = transfer.sink, (200..<300).contains(transfer.status) {
            // A short count makes libcurl stop the transfer with CURLE_WRITE_ERROR.
            return sink.write(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
        }
        let room = transfer.configuration.maxResponseBodyBytes - transfer.body.count
        if room > 0 {
            transfer.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: min(length, room)))
        }
        // A short count aborts the transfer: where the head is the answer, once the body is past
        // its limit (a receiver's endless body would hold the request until its timeout).
        if transfer.headIsTheAnswer, transfer.headComplete, length > room { return 0 }
        return length
    }

    /// A PUT's body, a chunk at a time; a read error aborts the transfer.
    static let readBody: CCurl_data_callback = { buffer, size, count, context in
        guard let buffer, let context else { return 0 }
        let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
        guard let source = transfer.source else { return 0 }
        return source.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count)) ?? CCurl_readfunc_abort()
    }

    static let readHeader: CCurl_data_callback = { data, size, count, context in
        let length = size * count
        guard let data, let context else { return length }
        let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
        var line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
        // By scalars: "\r\n" is one Character, which is neither "\r" nor "\n".
        while let last = line.unicodeScalars.last, last == "\n" || last == "\r" { line.unicodeScalars.removeLast() }
        if line.isEmpty {
            transfer.headComplete = transfer.status >= 200
        } else if line.hasPrefix("HTTP/") {
            // A new response begins (after a 100 Continue, say): keep only the final one's headers.
            transfer.headComplete = false
            transfer.headers = []
            let parts = line.split(separator: " ", maxSplits: 2)
            if parts.count >= 2, let status = Int(parts[1]) { transfer.status = status }
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon]).trimmingSpaces
            let value = String(line[line.index(after: colon)...]).trimmingSpaces
            transfer.headers.append(HTTPHeader(name, value))
        }
        return length
    }

    /// The SSRF guard: libcurl calls this with each resolved address before connecting to it.
    /// Returning `CURL_SOCKET_BAD` makes libcurl try the next address, then fail to connect.
    static let openSocket: curl_opensocket_callback = { context, purpose, address in
        guard let context, let address else { return CCurl_socket_bad() }
        let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
        let bytes = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { buffer -> [UInt8] in
            let count = CCurl_sockaddr_ip(address, buffer.baseAddress!)
            return Array(buffer.prefix(Int(count)))
        }
        guard let ip = IPAddress(bytes: bytes) else {
            transfer.refusals.append("address family \(address.pointee.family) is not IPv4 or IPv6")
            return CCurl_socket_bad()
        }
        if let refusal = transfer.configuration.addressPolicy.refusal(for: ip) {
            transfer.refusals.append(refusal)
            return CCurl_socket_bad()
        }
        // Close-on-exec: no child process (ffmpeg) keeps a connection open after libcurl closed it.
        return socket(address.pointee.family, address.pointee.socktype | Int32(SOCK_CLOEXEC.rawValue), address.pointee.protocol)
    }
}
