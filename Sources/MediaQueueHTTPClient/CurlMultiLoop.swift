import CCurl
import Foundation
import Synchronization

/// One dedicated thread that drives every transfer of a client through libcurl's multi
/// interface.
///
/// Why one thread with `curl_multi_*` rather than a pool of threads with blocking
/// `curl_easy_perform`: callback delivery is mostly waiting on the network, and a client may
/// have hundreds of requests in flight (many endpoints, some of them slow until a timeout). The
/// multi interface waits on all their sockets at once from one thread, with one shared
/// connection cache, so keep-alive connections are reused per host by whichever transfer goes
/// there next; a pool would need a thread per concurrent request and would reuse a connection
/// only when the same thread happened to go to the same host. Nothing of libcurl ever runs on
/// Swift's cooperative pool.
///
/// `@unchecked Sendable`: `multi`, `active`, `activeByID` and `idleHandles` are used only by the
/// loop thread once it has started (and by `deinit`, which runs after the thread let go of the
/// loop); everything other threads touch is in `mailbox`, behind a `Mutex`. `curl_multi_wakeup`
/// is documented as safe to call from any thread, and is called only while the loop (and so
/// the multi handle) is alive.
final class CurlMultiLoop: @unchecked Sendable {
    private struct Mailbox {
        var incoming: [CurlTransfer] = []
        var cancelled: [UInt64] = []
        var stopping = false
        var threadStarted = false
    }

    private let mailbox = Mutex(Mailbox())
    private let multi: UnsafeMutableRawPointer
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    private var activeByID: [UInt64: UnsafeMutableRawPointer] = [:]
    /// Easy handles kept for reuse (a handle keeps its buffers; connections live in the multi
    /// handle's cache either way).
    private var idleHandles: [UnsafeMutableRawPointer] = []
    private let maxIdleHandles = 64

    init(configuration: HTTPClientConfiguration) {
        CurlGlobal.initialize()
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init failed: out of memory") }
        self.multi = multi
        _ = CCurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, configuration.maxIdleConnections)
    }

    deinit {
        for handle in idleHandles { curl_easy_cleanup(handle) }
        curl_multi_cleanup(multi)
    }

    /// Hands a transfer to the loop thread, starting the thread the first time.
    func submit(_ transfer: CurlTransfer) {
        let (accepted, startThread) = mailbox.withLock { box -> (Bool, Bool) in
            guard !box.stopping else { return (false, false) }
            box.incoming.append(transfer)
            let start = !box.threadStarted
            box.threadStarted = true
            if !start { curl_multi_wakeup(multi) }
            return (true, start)
        }
        if !accepted {
            transfer.complete(.failure(HTTPClientError(.shutdown, "the HTTP client was shut down")))
        } else if startThread {
            let thread = Thread { [self] in main() }
            thread.name = "mediaqueue-http"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Stops a transfer; its task gets `CancellationError`.
    func cancel(_ id: UInt64) {
        mailbox.withLock { box in
            guard box.threadStarted, !box.stopping else { return }
            box.cancelled.append(id)
            curl_multi_wakeup(multi)
        }
    }

    /// Fails every transfer with `.shutdown` and ends the thread.
    func stop() {
        let pending = mailbox.withLock { box -> [CurlTransfer] in
            box.stopping = true
            if box.threadStarted {
                curl_multi_wakeup(multi)
                return []
            }
            defer { box.incoming = [] }
            return box.incoming
        }
        for transfer in pending { transfer.complete(.failure(HTTPClientError(.shutdown, "the HTTP client was shut down"))) }
    }

    // MARK: The loop thread

    private func main() {
        while true {
            let (incoming, cancelled, stopping) = mailbox.withLock { box in
                defer {
                    box.incoming = []
                    box.cancelled = []
                }
                return (box.incoming, box.cancelled, box.stopping)
            }
            if stopping {
                let shutdown = HTTPClientError(.shutdown, "the HTTP client was shut down")
                for transfer in incoming { transfer.complete(.failure(shutdown)) }
                for handle in Array(active.keys) { end(handle, with: .failure(shutdown)) }
                return
            }
            for transfer in incoming { start(transfer) }
            for id in cancelled {
                if let handle = activeByID[id] { end(handle, with: .failure(CancellationError())) }
            }
            var running: Int32 = 0
            _ = curl_multi_perform(multi, &running)
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle else { continue }
                let code = message.pointee.data.result
                if code == CURLE_OK {
                    var status = 0
                    _ = CCurl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
                    end(handle, with: .success(status))
                } else if let transfer = active[handle], transfer.headIsTheAnswer, transfer.headComplete {
                    end(handle, with: .success(transfer.status))
                } else {
                    end(handle, with: .failure(active[handle]?.error(for: code) ?? HTTPClientError(.transport, "unknown transfer")))
                }
            }
            // Sleeps until a socket is ready, a timeout of libcurl's falls due, or a wakeup.
            _ = curl_multi_poll(multi, nil, 0, 1000, nil)
        }
    }

    private func start(_ transfer: CurlTransfer) {
        let handle = idleHandles.popLast() ?? curl_easy_init()
        guard let handle else {
            transfer.complete(.failure(HTTPClientError(.transport, "curl_easy_init failed: out of memory")))
            return
        }
        if let problem = configure(handle, for: transfer) {
            curl_easy_reset(handle)
            idleHandles.append(handle)
            transfer.complete(.failure(problem))
            return
        }
        active[handle] = transfer
        activeByID[transfer.id] = handle
        let added = curl_multi_add_handle(multi, handle)
        if added != CURLM_OK {
            end(handle, with: .failure(HTTPClientError(.transport, String(cString: curl_multi_strerror(added)))))
        }
    }

    /// Sets every option of one request; returns an error if libcurl refused one.
    private func configure(_ handle: UnsafeMutableRawPointer, for transfer: CurlTransfer) -> HTTPClientError? {
        let configuration = transfer.configuration
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        var failures: [String] = []
        func check(_ code: CURLcode, _ what: String) {
            if code != CURLE_OK { failures.append("\(what): \(String(cString: curl_easy_strerror(code)))") }
        }
        check(CCurl_easy_setopt_string(handle, CURLOPT_URL, transfer.request.url), "URL")
        check(CCurl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"), "protocols")
        // Redirects are never followed: a 3xx is the endpoint's answer (and would dodge the guard
        // for the new location only if followed, which it is not).
        check(CCurl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0), "no redirects")
        // No proxy from the environment: the guard must see the callback host's own addresses.
        check(CCurl_easy_setopt_string(handle, CURLOPT_PROXY, ""), "no proxy")
        check(CCurl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1), "no signals")
        check(CCurl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, configuration.connectTimeout.milliseconds), "connect timeout")
        check(CCurl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, (transfer.request.timeout ?? configuration.timeout).milliseconds), "timeout")
        // Always set: a reused handle must not keep another request's limit.
        let stallSeconds = configuration.stallTimeout.map { max(1, Int($0.components.seconds)) } ?? 0
        check(CCurl_easy_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, stallSeconds > 0 ? 1 : 0), "stall limit")
        check(CCurl_easy_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, stallSeconds), "stall time")
        check(CCurl_easy_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1), "TCP keep-alive")
        check(CCurl_easy_setopt_string(handle, CURLOPT_USERAGENT, configuration.userAgent), "user agent")
        check(CCurl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, transfer.errorBuffer), "error buffer")
        // libcurl's defaults, set anyway: a reused handle must never inherit weaker settings.
        check(CCurl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1), "verify peer")
        check(CCurl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2), "verify host")
        if let caFile = configuration.caFile {
            check(CCurl_easy_setopt_string(handle, CURLOPT_CAINFO, caFile), "CA file")
        }

        if let signature = transfer.request.signature {
            check(
                CCurl_easy_setopt_string(handle, CURLOPT_AWS_SIGV4, "aws:amz:\(signature.region):\(signature.service)"),
                "AWS signature"
            )
            check(CCurl_easy_setopt_string(handle, CURLOPT_USERNAME, signature.accessKeyID), "access key")
            check(CCurl_easy_setopt_string(handle, CURLOPT_PASSWORD, signature.secretAccessKey), "secret key")
        }
        switch transfer.request.method {
        case .get:
            check(CCurl_easy_setopt_long(handle, CURLOPT_HTTPGET, 1), "GET")
        case .head:
            check(CCurl_easy_setopt_long(handle, CURLOPT_NOBODY, 1), "HEAD")
        case .delete:
            check(CCurl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, "DELETE"), "DELETE")
        case .put:
            check(CCurl_easy_setopt_long(handle, CURLOPT_UPLOAD, 1), "PUT")
            check(CCurl_easy_setopt_off_t(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(transfer.source?.length ?? 0)), "upload size")
            check(CCurl_easy_setopt_data_callback(handle, CURLOPT_READFUNCTION, CurlTransfer.readBody), "read callback")
            check(CCurl_easy_setopt_pointer(handle, CURLOPT_READDATA, context), "read context")
        case .post:
            // The body is copied by libcurl (COPYPOSTFIELDS), after its size is set.
            check(CCurl_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(transfer.request.body.count)), "body size")
            let body = transfer.request.body.isEmpty ? [0] : transfer.request.body
            body.withUnsafeBytes { bytes in
                check(CCurl_easy_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress)), "body")
            }
        }
        if let sink = transfer.sink {
            // Refuses a body whose Content-Length is already over the limit before it arrives.
            check(CCurl_easy_setopt_off_t(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(sink.maxBytes)), "size limit")
        }

        var list: UnsafeMutablePointer<curl_slist>?
        // "Expect:" stops libcurl waiting for a 100 Continue before sending larger bodies. Not on
        // signed requests: libcurl's AWS signature would cover the empty header, which it never
        // sends, and the store would refuse the signature.
        let noExpect = transfer.request.signature == nil ? ["Expect:"] : []
        for line in transfer.request.headers.map({ "\($0.name): \($0.value)" }) + noExpect {
            guard let next = curl_slist_append(list, line) else {
                failures.append("header list: out of memory")
                break
            }
            list = next
        }
        transfer.headerList = list
        check(CCurl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, list), "headers")

        check(CCurl_easy_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION, CurlTransfer.writeBody), "write callback")
        check(CCurl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, context), "write context")
        check(CCurl_easy_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION, CurlTransfer.readHeader), "header callback")
        check(CCurl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, context), "header context")
        check(CCurl_easy_setopt_opensocket(handle, CurlTransfer.openSocket), "open-socket callback")
        check(CCurl_easy_setopt_pointer(handle, CURLOPT_OPENSOCKETDATA, context), "open-socket context")
        return failures.isEmpty ? nil : HTTPClientError(.invalidURL, failures.joined(separator: "; "))
    }

    /// Takes a handle off the multi, resumes its task, and keeps the handle for reuse.
    private func end(_ handle: UnsafeMutableRawPointer, with result: Result<Int, any Error>) {
        _ = curl_multi_remove_handle(multi, handle)
        // Forget the context pointers and the error buffer before the transfer may go away.
        curl_easy_reset(handle)
        if idleHandles.count < maxIdleHandles {
            idleHandles.append(handle)
        } else {
            curl_easy_cleanup(handle)
        }
        guard let transfer = active.removeValue(forKey: handle) else { return }
        activeByID[transfer.id] = nil
        transfer.complete(result.map { status in
            HTTPResponse(status: status, headers: transfer.headers, body: transfer.body)
        })
    }
}

/// `curl_global_init` exactly once per process, before the first handle.
enum CurlGlobal {
    private static let done: Bool = {
        CCurl_global_init() == CURLE_OK
    }()

    static func initialize() {
        precondition(done, "curl_global_init failed")
    }
}

extension Duration {
    /// Whole milliseconds, for libcurl's `…_MS` options.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
