import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MediaQueueAPI
import MediaQueueCore
import Testing

/// Requests that name their bucket only in the Host (`<bucket>.ci.<region>.myqcloud.com`).
@Suite struct HostSigningTests {
    static let first = "a-1250000000"
    static let second = "b-1250000000"
    static let twoBuckets = Credential(secretID: "AKIDboth", secretKey: "both-key", buckets: [first, second])

    /// GET /queue on `bucket`'s host, signed by `credential` with `host` among the signed
    /// headers or not; the signature made for `signedFor`'s host.
    func listQueues(
        _ client: TestClient, bucket: String, signedFor: String? = nil, signingHost: Bool, credential: Credential = twoBuckets
    ) async throws -> TestClient.Response {
        let host = "\(bucket).ci.ap-guangzhou.myqcloud.com"
        let authorization = TestSigner.authorization(
            secretID: credential.secretID, secretKey: credential.secretKey, method: "GET", path: "/queue",
            headers: signingHost ? ["host": "\(signedFor ?? bucket).ci.ap-guangzhou.myqcloud.com"] : [:],
            start: APIFixture.now - 60, end: APIFixture.now + 60
        )
        return try await client.execute(TestClient.Request("/queue", method: .get, authority: host, headers: [.authorization: authorization]))
    }

    func live(_ body: @escaping @Sendable (TestClient) async throws -> Void) async throws {
        let fixture = APIFixture(moreCredentials: [Self.twoBuckets])
        // Live, for requests that name a bucket's host (the router test's is localhost).
        try await fixture.service.makeApplication().test(.live) { live in
            let client = TestClient(host: "localhost", port: try #require(live.port), configuration: .init(timeout: .seconds(20)))
            client.connect()
            do {
                try await body(client)
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    /// Unsigned, the Host could be changed: a signature made for one of the key's buckets would
    /// then serve for the other.
    @Test func aKeyOfSeveralBucketsMustSignTheHost() async throws {
        try await live { client in
            let unsigned = try await listQueues(client, bucket: Self.second, signingHost: false)
            #expect(unsigned.head.status == .forbidden)
            #expect(unsigned.body.map { String(buffer: $0) }?.contains("sign the Host header") == true)
            let signed = try await listQueues(client, bucket: Self.second, signingHost: true)
            #expect(signed.head.status == .ok)
            let moved = try await listQueues(client, bucket: Self.second, signedFor: Self.first, signingHost: true)
            #expect(moved.head.status == .forbidden, "a signature of the first bucket's host does not hold for the second's")
        }
    }

    @Test func aKeyOfOneBucketMayLeaveTheHostUnsigned() async throws {
        try await live { client in
            let key = Credential(secretID: APIFixture.secretID, secretKey: APIFixture.secretKey, buckets: [APIFixture.bucket])
            let response = try await listQueues(client, bucket: APIFixture.bucket, signingHost: false, credential: key)
            #expect(response.head.status == .ok)
        }
    }

    @Test func aHostThatNamesNoValidBucketIsRefused() async throws {
        try await live { client in
            let response = try await listQueues(client, bucket: "bad_name-1250000000", signingHost: true)
            #expect(response.head.status == .badRequest)
        }
    }
}
