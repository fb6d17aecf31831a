import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MediaQueueAPI
import MediaQueueCore
import Testing

/// GET answers with the headers and the bytes of one version of an object.
@Suite struct ObjectDownloadTests {
    @Test func aGetRacingAnUploadSendsTheBytesOfTheVersionItsHeadersDescribe() async throws {
        let storage = try ReplacedOnEveryLook(versions: ["first version", "the second, longer version"])
        defer { try? FileManager.default.removeItem(atPath: storage.folder) }
        try await Self.onTheBucketsHost(storage) { client in
            let response = try await Self.signed(client, .get, "/in/a.bin")
            #expect(response.head.status == .ok)
            let body = response.body.map { String(buffer: $0) } ?? ""
            #expect(body == "first version", "the version the headers were read from, not the one that replaced it")
            #expect(response.head.headerFields[.eTag] == "\"\(Insecure.MD5.hash(data: Data(body.utf8)).map { String(format: "%02x", $0) }.joined())\"")
            #expect(response.head.headerFields[.contentLength] == "13")

            // A DELETE the storage refuses is an error, not 204 (the object is still there).
            let refused = try await Self.signed(client, .delete, "/in/a.bin")
            #expect(refused.head.status.code >= 500, "\(refused.head.status)")
            // Why is for the service log (what a storage says can name its hosts); the client gets the request id.
            #expect(refused.body.map { String(buffer: $0) }?.contains("<Code>InternalError</Code>") == true)
            #expect(refused.body.map { String(buffer: $0) }?.contains("see the service log for request") == true)
        }
    }

    /// On a bucket's object host a key under `console/` is an object like any other: the
    /// console's path took it, and such an object could be neither read nor written.
    @Test func aKeyUnderConsoleIsAnObjectOnTheBucketsHost() async throws {
        let storage = try ReplacedOnEveryLook(versions: ["in the console folder"])
        defer { try? FileManager.default.removeItem(atPath: storage.folder) }
        try await Self.onTheBucketsHost(storage) { client in
            let response = try await Self.signed(client, .get, "/console/a.bin")
            #expect(response.head.status == .ok)
            #expect(response.body.map { String(buffer: $0) } == "in the console folder")
        }
    }

    /// Query parameters as the SDKs send them: a space as `+` (signed as `%20`), a name with
    /// characters to encode (a CI processing rule) encoded. Read as they came, both failed the
    /// signature.
    @Test func queryParametersAreReadAsTheSDKsEncodeThem() async throws {
        let storage = try ReplacedOnEveryLook(versions: ["an object"])
        defer { try? FileManager.default.removeItem(atPath: storage.folder) }
        try await Self.onTheBucketsHost(storage) { client in
            let spaced = try await Self.signed(
                client, .get, "/in/a.bin", query: "response-content-disposition=attachment%3B+filename%3Da+b.bin",
                parameters: ["response-content-disposition": "attachment; filename=a b.bin"]
            )
            #expect(spaced.head.status == .ok)
            let rule = try await Self.signed(client, .get, "/in/a.bin", query: "imageMogr2%2Fthumbnail%2F!50p", parameters: ["imageMogr2/thumbnail/!50p": ""])
            #expect(rule.head.status == .ok)
        }
    }

    /// On a port of its own, the Host that Tencent's Python SDK signs is the name without the
    /// port (`urlparse(url).hostname`), while it sends the port in the Host header.
    @Test func aHostSignedWithoutItsPortIsTheHostSent() async throws {
        let storage = try ReplacedOnEveryLook(versions: ["an object"])
        defer { try? FileManager.default.removeItem(atPath: storage.folder) }
        try await Self.onTheBucketsHost(storage) { client in
            let cases: [(String, HTTPResponse.Status)] = [
                (Self.host, .ok), (Self.host + ":8080", .ok),
                // Another bucket's host, or another name: the port taken off changes only this one.
                ("other-1250000000.cos.ap-guangzhou.myqcloud.com", .forbidden), ("another-host.example.com", .forbidden),
            ]
            for (signedHost, status) in cases {
                let authorization = TestSigner.authorization(
                    secretID: APIFixture.secretID, secretKey: APIFixture.secretKey, method: "GET", path: "/in/a.bin",
                    headers: ["host": signedHost], start: APIFixture.now - 60, end: APIFixture.now + 60
                )
                let request = TestClient.Request("/in/a.bin", method: .get, authority: Self.host + ":8080", headers: [.authorization: authorization])
                let response = try await client.execute(request)
                #expect(response.head.status == status, "signed for \(signedHost)")
            }
        }
    }

    static let host = "\(APIFixture.bucket).cos.ap-guangzhou.myqcloud.com"

    /// Live, for a client that names the bucket's COS host (the router test's is localhost).
    static func onTheBucketsHost(_ storage: some ObjectStorage, _ body: @escaping @Sendable (TestClient) async throws -> Void) async throws {
        try await APIFixture(objects: ObjectAPI(storage: storage)).service.makeApplication().test(.live) { live in
            let client = TestClient(host: "localhost", port: try #require(live.port), configuration: .init(timeout: .seconds(20)))
            client.connect()
            try await body(client)
            try await client.shutdown()
        }
    }

    /// `query` is sent as it is; `parameters` are what the client signed of it.
    static func signed(
        _ client: TestClient, _ method: HTTPRequest.Method, _ path: String, query: String = "", parameters: [String: String] = [:]
    ) async throws -> TestClient.Response {
        let authorization = TestSigner.authorization(
            secretID: APIFixture.secretID, secretKey: APIFixture.secretKey, method: method.rawValue, path: path,
            headers: ["host": host], parameters: parameters, start: APIFixture.now - 60, end: APIFixture.now + 60
        )
        let uri = query.isEmpty ? path : path + "?" + query
        return try await client.execute(TestClient.Request(uri, method: method, authority: host, headers: [.authorization: authorization]))
    }
}

/// One object whose file is replaced by the next version right after each look at it (its info,
/// or its opening), as an upload finishing at that moment would.
private final class ReplacedOnEveryLook: ObjectStorage, @unchecked Sendable {
    let folder: String
    private let lock = NSLock()
    private var versions: [String]
    var path: String { folder + "/object" }

    init(versions: [String]) throws {
        folder = NSTemporaryDirectory() + "replaced-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        self.versions = versions
        replace()
    }

    /// Puts the next version in place with a `rename`, as storages publish.
    private func replace() {
        lock.withLock {
            guard !versions.isEmpty else { return }
            let next = folder + "/next"
            FileManager.default.createFile(atPath: next, contents: Data(versions.removeFirst().utf8))
            rename(next, path)
        }
    }

    private func info(of data: Data) -> ObjectInfo {
        let etag = "\"" + Insecure.MD5.hash(data: data).map { String(format: "%02x", $0) }.joined() + "\""
        return ObjectInfo(key: "in/a.bin", size: data.count, etag: etag, lastModified: Timestamp(seconds: APIFixture.now))
    }

    func objectInfo(bucket: String, key: ObjectKey) -> ObjectInfo? {
        defer { replace() }
        return FileManager.default.contents(atPath: path).map(info(of:))
    }

    func openObject(bucket: String, key: ObjectKey) -> OpenObject? {
        defer { replace() }
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() else { return nil }
        return OpenObject(info: info(of: data), file: ReadableFile(path: path, opened: handle))
    }

    func readableFile(bucket: String, key: ObjectKey) -> ReadableFile? { ReadableFile(path: path) }
    func makeStagingFolder(bucket: String, name: String, for key: ObjectKey?) throws(WorkFailure) -> String { folder }
    func publish(_ path: String, bucket: String, as key: ObjectKey) throws(WorkFailure) -> String? { nil }
    func remove(bucket: String, key: ObjectKey) throws(WorkFailure) {
        throw WorkFailure(code: "StorageUnavailable", message: "the store refused to remove \(key.rawValue)")
    }
    func listObjects(bucket: String, _ query: ObjectListQuery) -> ObjectListing { ObjectListing() }
    func removeStagingFolder(_ path: String) {}
    func displayPrefixes(bucket: String) -> [(path: String, shownAs: String)] { [] }
}
