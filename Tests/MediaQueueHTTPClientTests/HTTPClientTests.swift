import Foundation
import MediaQueueHTTPClient
import MediaQueueTestSupport
import Testing

/// The libcurl client against a real HTTP server on loopback.
@Suite struct HTTPClientTests {
    /// Timeouts far above what a request here takes, even on a loaded machine: only the tests
    /// about timeouts set short ones.
    static let loopback = HTTPClientConfiguration(
        connectTimeout: .seconds(60), timeout: .seconds(120), addressPolicy: AddressPolicy(allowedNetworks: [IPNetwork("127.0.0.0/8")!])
    )

    @Test func postsTheBodyAndHeadersAndReturnsStatusHeadersAndBody() async throws {
        let receiver = try TestHTTPReceiver { request, _ in
            .status(201, headers: ["X-Echo": request.headers["x-test"] ?? ""], body: "got \(request.body.count) bytes")
        }
        let client = HTTPClient(configuration: Self.loopback)
        let body = Array("<Response>é</Response>".utf8)
        let response = try await client.post(HTTPRequest(
            url: receiver.url("/cb?x=1"), headers: [HTTPHeader("Content-Type", "application/xml"), HTTPHeader("X-Test", "abc")], body: body
        ))
        #expect(response.status == 201)
        #expect(response.header("x-echo") == "abc")
        #expect(String(decoding: response.body, as: UTF8.self) == "got \(body.count) bytes")
        let request = try #require(receiver.requests.first)
        #expect(request.method == "POST")
        #expect(request.path == "/cb?x=1")
        #expect(request.body == body)
        #expect(request.headers["content-type"] == "application/xml")
        #expect(request.headers["expect"] == nil)
    }

    /// A callback's answer is its status: a receiver that answers 200 and then sends less body
    /// than it announced, or a body without end, has answered. Before, the first was a failed
    /// attempt (sent again up to the retry schedule's end, then dead), the second held the
    /// request until its timeout.
    @Test func aPostsAnswerIsItsHeadWhateverItsBodyDoes() async throws {
        let receiver = try TestHTTPReceiver { request, _ in
            request.path == "/endless" ? .endless(200) : .cutShort(200, announced: 100, body: "short")
        }
        var configuration = Self.loopback
        configuration.timeout = .seconds(30)
        let client = HTTPClient(configuration: configuration)
        let cut = try await client.post(HTTPRequest(url: receiver.url("/cut"), body: [1]))
        #expect(cut.status == 200 && String(decoding: cut.body, as: UTF8.self) == "short")
        let endless = try await client.post(HTTPRequest(url: receiver.url("/endless"), body: [2]))
        #expect(endless.status == 200 && endless.body.count == configuration.maxResponseBodyBytes)

        // Where the body is the answer (a store's GET), a body cut short is a failure.
        await #expect(throws: HTTPClientError.self) {
            _ = try await client.send(HTTPRequest(method: .get, url: receiver.url("/cut"), body: []))
        }
    }

    @Test func httpsServersAreVerifiedAgainstTheConfiguredCAsAndRefusedOtherwise() async throws {
        let receiver = try TestHTTPReceiver()
        let server = try await TLSForwarder(targetPort: Int(receiver.port))
        let untrusting = HTTPClient(configuration: Self.loopback)
        await #expect(throws: HTTPClientError.self) {
            _ = try await untrusting.post(HTTPRequest(url: server.url(), body: [1]))
        }
        do {
            _ = try await untrusting.post(HTTPRequest(url: server.url(), body: [1]))
        } catch let error as HTTPClientError {
            #expect(error.code == .tls, "\(error)")
        }
        // Another test CA's certificate is no better than none.
        let stranger = try await TLSForwarder(targetPort: Int(receiver.port))
        var trustingOther = Self.loopback
        trustingOther.caFile = stranger.caFile
        await #expect(throws: HTTPClientError.self) {
            _ = try await HTTPClient(configuration: trustingOther).post(HTTPRequest(url: server.url(), body: [2]))
        }
        #expect(receiver.requests.isEmpty)

        var trusting = Self.loopback
        trusting.caFile = server.caFile
        let response = try await HTTPClient(configuration: trusting).post(HTTPRequest(url: server.url(), body: Array("over TLS".utf8)))
        #expect(response.status == 200)
        #expect(receiver.requests.map(\.text) == ["over TLS"])
        // The server logs a refused handshake when the client's alert arrives, maybe after the client returned.
        try await eventually("the server to see three refused handshakes") { server.failedHandshakes == 3 }
        await server.stop()
        await stranger.stop()
    }

    @Test func keepsTheConnectionAliveAcrossRequestsToTheSameHost() async throws {
        let receiver = try TestHTTPReceiver()
        let client = HTTPClient(configuration: Self.loopback)
        for index in 0..<5 {
            let response = try await client.post(HTTPRequest(url: receiver.url(), body: Array("\(index)".utf8)))
            #expect(response.status == 200)
        }
        #expect(receiver.requests.count == 5)
        // Reuse, not a fixed count: under load a second handle may open a second connection,
        // but without keep-alive every request would open its own.
        #expect(receiver.connectionCount < 5)
    }

    @Test func manyConcurrentRequestsAllComeBack() async throws {
        let receiver = try TestHTTPReceiver { request, _ in .status(200, body: request.text) }
        let client = HTTPClient(configuration: Self.loopback)
        let bodies = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let response = try await client.post(HTTPRequest(url: receiver.url(), body: Array("n\(index)".utf8)))
                    return String(decoding: response.body, as: UTF8.self)
                }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(bodies == Set((0..<200).map { "n\($0)" }))
    }

    @Test func doesNotFollowRedirects() async throws {
        let target = try TestHTTPReceiver()
        let receiver = try TestHTTPReceiver { _, _ in .status(302, headers: ["Location": target.url()]) }
        let response = try await HTTPClient(configuration: Self.loopback).post(HTTPRequest(url: receiver.url(), body: []))
        #expect(response.status == 302)
        #expect(target.requests.isEmpty)
    }

    /// The time limit only catches a timeout that never fires; how long it took is not asserted.
    @Test(.timeLimit(.minutes(5))) func aServerThatNeverAnswersTimesOut() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .hang }
        var configuration = Self.loopback
        configuration.timeout = .seconds(1)
        let client = HTTPClient(configuration: configuration)
        let error = await #expect(throws: HTTPClientError.self) {
            try await client.post(HTTPRequest(url: receiver.url(), body: []))
        }
        #expect(error?.code == .timedOut)
        try await eventually("the request to have reached the server") { receiver.requests.count == 1 }
        #expect(receiver.requests.count == 1)
    }

    @Test func aClosedPortFailsToConnect() async throws {
        // Reserved, not merely free: a port given back could be taken by any other connection.
        let reserved = try ReservedPort()
        defer { reserved.release() }
        let url = "http://127.0.0.1:\(reserved.port)/callback"
        let error = await #expect(throws: HTTPClientError.self) {
            try await HTTPClient(configuration: Self.loopback).post(HTTPRequest(url: url, body: []))
        }
        #expect(error?.code == .connectFailed)
    }

    @Test func theSSRFGuardRefusesLoopbackAfterResolvingTheName() async throws {
        let receiver = try TestHTTPReceiver()
        let client = HTTPClient(configuration: HTTPClientConfiguration(connectTimeout: .seconds(60), timeout: .seconds(120)))
        for url in [receiver.url(), "http://localhost:\(receiver.port)/callback"] {
            let error = await #expect(throws: HTTPClientError.self) {
                try await client.post(HTTPRequest(url: url, body: []))
            }
            #expect(error?.code == .addressRefused)
            #expect(error?.message.contains("loopback") == true)
        }
        #expect(receiver.requests.isEmpty)
    }

    @Test func onlyHTTPAndHTTPSAreSpoken() async throws {
        let error = await #expect(throws: HTTPClientError.self) {
            try await HTTPClient(configuration: Self.loopback).post(HTTPRequest(url: "file:///etc/passwd", body: []))
        }
        #expect(error?.code == .invalidURL)
    }

    @Test func cancellingTheTaskStopsTheRequest() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .hang }
        let client = HTTPClient(configuration: Self.loopback)
        let task = Task { try await client.post(HTTPRequest(url: receiver.url(), body: [])) }
        try await eventually("the request to arrive") { !receiver.requests.isEmpty }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}

@Suite struct AddressPolicyTests {
    @Test(arguments: [
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"), ("127.8.8.8", "loopback"), ("169.254.169.254", "link-local"), ("100.64.0.1", "CGNAT"),
        ("100.127.255.255", "CGNAT"), ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("0.0.0.0", "reserved"),
        ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"), ("192.0.2.7", "documentation"), ("198.18.0.1", "benchmarking"),
        ("::1", "loopback"), ("::", "unspecified"), ("fe80::1", "link-local"), ("fc00::1", "unique local"), ("fd12:3456::1", "unique local"),
        ("ff02::1", "multicast"), ("::ffff:10.0.0.1", "private"), ("::ffff:127.0.0.1", "loopback"), ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2001:db8::1", "documentation"),
    ])
    func refusesNonPublicAddresses(_ text: String, _ kind: String) throws {
        let address = try #require(IPAddress(text))
        let refusal = try #require(AddressPolicy.publicOnly.refusal(for: address))
        #expect(refusal.contains(kind))
    }

    @Test(arguments: ["8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])
    func allowsPublicAddresses(_ text: String) throws {
        #expect(AddressPolicy.publicOnly.allows(try #require(IPAddress(text))))
    }

    @Test func allowedNetworksAreExempt() throws {
        let policy = AddressPolicy(allowedNetworks: [IPNetwork("127.0.0.0/8")!, IPNetwork("fd00::/8")!])
        #expect(policy.allows(IPAddress("127.0.0.1")!))
        #expect(policy.allows(IPAddress("::ffff:127.0.0.1")!))
        #expect(policy.allows(IPAddress("fd00::5")!))
        #expect(!policy.allows(IPAddress("::1")!))
        #expect(!policy.allows(IPAddress("10.0.0.1")!))
    }

    @Test func parsesAndPrintsAddresses() {
        #expect(IPAddress("2001:db8:0:0:1:0:0:1")?.description == "2001:db8::1:0:0:1")
        #expect(IPAddress("[::1]")?.description == "::1")
        #expect(IPAddress("fe80::1%eth0")?.description == "fe80::1")
        #expect(IPAddress("::ffff:1.2.3.4")?.bytes.suffix(4) == [1, 2, 3, 4])
        #expect(IPAddress("1.2.3") == nil)
        #expect(IPAddress("1.2.3.256") == nil)
        #expect(IPAddress("1::2::3") == nil)
        #expect(IPAddress("example.com") == nil)
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPNetwork("10.0.0.0/8")?.contains(IPAddress("10.255.0.1")!) == true)
        #expect(IPNetwork("10.0.0.0/8")?.contains(IPAddress("11.0.0.1")!) == false)
        if case .failure(let error) = IPNetwork.parseList("127.0.0.0/8, nonsense") {
            #expect(error.text == "nonsense")
        } else {
            Issue.record("a bad entry was accepted")
        }
    }
}


/// `HTTPClient.download`, which fetches jobs' `Input.Url`, against a real server on loopback.
@Suite struct HTTPDownloadTests {
    let folder: String

    init() throws {
        folder = NSTemporaryDirectory() + "/" + TestEnvironment.uniqueName("download")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    static let body = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }

    @Test(arguments: [false, true])
    func aSuccessfulGetWritesTheWholeBodyToTheFile(chunked: Bool) async throws {
        let receiver = try TestHTTPReceiver { _, _ in chunked ? .chunked(Self.body) : .bytes(200, body: Self.body) }
        let path = folder + "/a.bin"
        let download = try await HTTPClient(configuration: HTTPClientTests.loopback)
            .download(receiver.url("/media/a.bin?sig=1"), toFile: path, maxBytes: 1 << 20, timeout: .seconds(120))
        #expect(download.succeeded)
        #expect(download.bytesWritten == Self.body.count)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(Self.body))
        #expect(receiver.requests.first?.method == "GET")
        #expect(receiver.requests.first?.path == "/media/a.bin?sig=1")
    }

    @Test func aNon2xxAnswerIsReturnedAndNothingIsWritten() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .status(404, body: "NoSuchKey") }
        let path = folder + "/a.bin"
        let download = try await HTTPClient(configuration: HTTPClientTests.loopback)
            .download(receiver.url("/a.bin"), toFile: path, maxBytes: 1 << 20, timeout: .seconds(120))
        #expect(!download.succeeded)
        #expect(download.response.status == 404)
        #expect(String(decoding: download.response.body, as: UTF8.self) == "NoSuchKey")
        #expect(download.bytesWritten == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).isEmpty)
    }

    @Test(arguments: [false, true])
    func aBodyOverTheLimitStopsTheTransferWithTooLarge(chunked: Bool) async throws {
        let receiver = try TestHTTPReceiver { _, _ in chunked ? .chunked(Self.body) : .bytes(200, body: Self.body) }
        let error = await #expect(throws: HTTPClientError.self) {
            try await HTTPClient(configuration: HTTPClientTests.loopback)
                .download(receiver.url("/a.bin"), toFile: folder + "/a.bin", maxBytes: 100_000, timeout: .seconds(120))
        }
        #expect(error?.code == .tooLarge)
        let written = (try? FileManager.default.attributesOfItem(atPath: folder + "/a.bin")[.size] as? Int) ?? 0
        #expect(written <= 100_000)
    }

    @Test func theSSRFGuardAppliesToDownloads() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .bytes(200, body: Self.body) }
        let error = await #expect(throws: HTTPClientError.self) {
            try await HTTPClient().download(receiver.url("/a.bin"), toFile: folder + "/a.bin", maxBytes: 1 << 20, timeout: .seconds(120))
        }
        #expect(error?.code == .addressRefused)
        #expect(receiver.requests.isEmpty)
    }

    @Test func theDownloadTimeLimitEndsAHangingServer() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .hang }
        let error = await #expect(throws: HTTPClientError.self) {
            try await HTTPClient(configuration: HTTPClientTests.loopback)
                .download(receiver.url("/a.bin"), toFile: folder + "/a.bin", maxBytes: 1 << 20, timeout: .milliseconds(500))
        }
        #expect(error?.code == .timedOut)
    }
}
