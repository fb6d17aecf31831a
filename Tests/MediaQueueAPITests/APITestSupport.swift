import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MediaQueueAPI
import MediaQueueCore
import MediaQueueXML

/// A signer written from the COS documentation, separately from the service's verifier, so the
/// tests check the algorithm rather than the code against itself.
enum TestSigner {
    static func authorization(
        secretID: String, secretKey: String, method: String, path: String,
        headers: [String: String] = [:], parameters: [String: String] = [:], start: Int64, end: Int64, keyTime: String? = nil
    ) -> String {
        func encode(_ text: String) -> String {
            let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
            return text.addingPercentEncoding(withAllowedCharacters: allowed)!
        }
        func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        let signedHeaders = headers.map { (encode($0.key).lowercased(), encode($0.value)) }.sorted { $0.0 < $1.0 }
        let signedParameters = parameters.map { (encode($0.key).lowercased(), encode($0.value)) }.sorted { $0.0 < $1.0 }
        let time = "\(start);\(end)"
        let httpString = [
            method.lowercased(), path,
            signedParameters.map { "\($0.0)=\($0.1)" }.joined(separator: "&"),
            signedHeaders.map { "\($0.0)=\($0.1)" }.joined(separator: "&"),
        ].joined(separator: "\n") + "\n"
        let stringToSign = "sha1\n\(time)\n\(hex(Insecure.SHA1.hash(data: Data(httpString.utf8))))\n"
        let keyTime = keyTime ?? time
        let signKey = hex(HMAC<Insecure.SHA1>.authenticationCode(for: Data(keyTime.utf8), using: SymmetricKey(data: Data(secretKey.utf8))))
        let signature = hex(HMAC<Insecure.SHA1>.authenticationCode(for: Data(stringToSign.utf8), using: SymmetricKey(data: Data(signKey.utf8))))
        return "q-sign-algorithm=sha1&q-ak=\(secretID)&q-sign-time=\(time)&q-key-time=\(keyTime)"
            + "&q-header-list=\(signedHeaders.map(\.0).joined(separator: ";"))"
            + "&q-url-param-list=\(signedParameters.map(\.0).joined(separator: ";"))&q-signature=\(signature)"
    }
}

/// An API over the memory store with one key pair for `bucket`, and a fixed clock.
struct APIFixture {
    static let bucket = "test-1250000000"
    static let secretID = "AKIDtest"
    static let secretKey = "secret-key-1"
    static let now: Int64 = 1_700_000_000

    let store = MemoryJobStore()
    let time = ManualTimeSource(Timestamp(seconds: now))
    let service: APIService

    init(
        anonymous: Bool = false, maxBodyBytes: Int = 1 << 20, readiness: ReadinessCheck = .alwaysReady, objects: ObjectAPI? = nil,
        moreCredentials: [Credential] = [], extraRoutes: @escaping @Sendable (Router<APIContext>) -> Void = { _ in }
    ) {
        let queues = QueueDirectory(store: store) {
            MediaQueue(bucket: "", name: MediaQueue.defaultName, maxConcurrent: 2, maxSize: 5, createTime: Timestamp(seconds: APIFixture.now))
        }
        let workers = WorkerRegistry([AcceptingWorker(tag: "Snapshot"), AcceptingWorker(tag: "MediaInfo")])
        service = APIService(
            options: APIOptions(
                credentials: [
                    Credential(secretID: Self.secretID, secretKey: Self.secretKey, buckets: [Self.bucket]),
                    Credential(secretID: "AKIDother", secretKey: "other-key", buckets: ["other-1250000000"]),
                ] + moreCredentials,
                allowAnonymous: anonymous, maxBodyBytes: maxBodyBytes
            ),
            store: store, factory: SubmissionFactory(queues: queues, workers: workers), formatting: CIFormatting(),
            time: time, logger: Logger(label: "api-test"), readiness: readiness, objects: objects, extraRoutes: extraRoutes
        )
    }

    func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await service.makeApplication().test(.router) { client in try await body(client) }
    }

    /// Sends a request signed with the test key (or `key`), the way the SDK signs: host header
    /// and the query parameters present.
    /// An `Authorization` for `GET /<bucket>/queue` with `parameters`, signed with the fixture's
    /// key (and `host`) for the minute around `now`.
    static func queueListAuthorization(parameters: [String: String] = [:], keyTime: String? = nil) -> String {
        TestSigner.authorization(
            secretID: secretID, secretKey: secretKey, method: "GET", path: "/\(bucket)/queue",
            headers: ["host": "localhost"], parameters: parameters, start: now - 60, end: now + 60, keyTime: keyTime
        )
    }

    static func signed(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, query: [String: String] = [:],
        body: String? = nil, headers: [String: String] = [:], secretID: String = secretID, key: String = secretKey, start: Int64 = now - 60,
        end: Int64 = now + 600
    ) async throws -> TestResponse {
        let fullPath = "/\(bucket)\(path)"
        let authorization = TestSigner.authorization(
            secretID: secretID, secretKey: key, method: method.rawValue, path: fullPath,
            headers: headers.merging(["host": "localhost"]) { $1 }, parameters: query, start: start, end: end
        )
        let queryString = query.isEmpty ? "" : "?" + query.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" }.joined(separator: "&")
        var fields: HTTPFields = [.authorization: authorization, .contentType: "application/xml"]
        for (name, value) in headers { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        return try await client.execute(uri: fullPath + queryString, method: method, headers: fields, body: body.map { ByteBuffer(string: $0) })
    }
}

struct AcceptingWorker: MediaWorker {
    let tag: String
    func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {
        _ = try operation.requireInput()
    }
    func run(_ job: Job, context: WorkContext) async throws -> WorkResult { WorkResult() }
}

extension TestResponse {
    var xml: XMLTree? { try? XMLDocumentParser.parse(Array(body.readableBytesView)) }
    var errorCode: String? { xml?.text("Code") }
}

func jobRequest(level: Int = 0, userData: String = "u") -> String {
    "<Request><Tag>Snapshot</Tag><Input><Object>in/a.mp4</Object></Input><Operation><JobLevel>\(level)</JobLevel><UserData>\(userData)</UserData><Output><Object>o/${Number}.jpg</Object></Output></Operation></Request>"
}
