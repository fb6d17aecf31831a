import Foundation
import MediaQueueApp
import MediaQueueTestSupport
import Testing

/// `mediaqueue submit` against a broker over TLS with no `MEDIAQUEUE_AMQP_CA_FILE`: the system's
/// trust store (OpenSSL's `SSL_CERT_FILE`, here the test CA) is used, where every certificate used
/// to be refused; and a broker it cannot reach ends the command within its timeout, where it used
/// to wait for ever.
@Suite(
    .enabled(if: FaultBroker.isAvailable && TestEnvironment.faultAMQPSURL != nil && TestEnvironment.faultCACertificatePath != nil),
    .timeLimit(.minutes(5))
)
struct SubmitCommandTests {
    @Test func anAMQPSBrokerIsTrustedThroughTheSystemStoreAndAnUnreachableOneEndsTheWait() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let harness = try ServiceHarness()
            let request = harness.configuration.dataDir + "/request.xml"
            try FileManager.default.createDirectory(atPath: harness.configuration.dataDir, withIntermediateDirectories: true)
            try Data("<Request><Tag>MediaInfo</Tag><Input><Object>a.mp4</Object></Input></Request>".utf8).write(to: URL(fileURLWithPath: request))
            let url = try #require(TestEnvironment.faultAMQPSURL)
            let arguments = ["submit", "--request", request, "--timeout", "5"]

            // Connected and published: the fault broker has no intake queue, so the broker returns it.
            let trusted = try await harness.runCLI(
                arguments, environment: ["MEDIAQUEUE_AMQP_URL": url, "SSL_CERT_FILE": try #require(TestEnvironment.faultCACertificatePath)],
                allowFailure: true
            )
            #expect(trusted.stderr.contains("unroutable mandatory message"), "\(trusted.stderr.suffix(600))")

            // The system's own bundle does not hold the test CA: refused, and said so in time.
            let untrusted = try await harness.runCLI(arguments, environment: ["MEDIAQUEUE_AMQP_URL": url], allowFailure: true)
            #expect(untrusted.status != 0)
            #expect(untrusted.stderr.contains("SSL peer cert verification failed"), "\(untrusted.stderr.suffix(600))")
            #expect(untrusted.stderr.contains("could not connect to the broker"), "\(untrusted.stderr.suffix(600))")
        }
    }
}
