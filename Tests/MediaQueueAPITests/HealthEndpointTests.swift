import Hummingbird
import HummingbirdTesting
import MediaQueueAPI
import Synchronization
import Testing

/// The probes answer without a bucket or a signature; `/readyz` gives the check's reasons.
@Suite struct HealthEndpointTests {
    @Test func livenessAnswersWithoutSignatureOrBucket() async throws {
        try await APIFixture().test { client in
            let response = try await client.execute(uri: "/healthz", method: .get)
            #expect(response.status == .ok)
            #expect(String(buffer: response.body) == "ok\n")
            let post = try await client.execute(uri: "/healthz", method: .post)
            #expect(post.status == .methodNotAllowed)
        }
    }

    @Test func readinessIs503WithEveryReasonUntilTheCheckFindsNone() async throws {
        let reasons = Mutex(["broker not connected (intake, amqp://guest:***@127.0.0.1:5672/)", "store not writable: locked"])
        let fixture = APIFixture(readiness: ReadinessCheck { reasons.withLock { $0 } })
        try await fixture.test { client in
            let down = try await client.execute(uri: "/readyz", method: .get)
            #expect(down.status == .serviceUnavailable)
            #expect(String(buffer: down.body) == """
                not ready: broker not connected (intake, amqp://guest:***@127.0.0.1:5672/)
                not ready: store not writable: locked

                """)
            reasons.withLock { $0 = [] }
            let up = try await client.execute(uri: "/readyz", method: .get)
            #expect(up.status == .ok)
            #expect(String(buffer: up.body) == "ready\n")
        }
    }

    @Test func otherPathsStillNeedTheirSignature() async throws {
        try await APIFixture().test { client in
            let response = try await client.execute(uri: "/\(APIFixture.bucket)/queue", method: .get)
            #expect(response.status == .forbidden)
        }
    }
}
