import Foundation
import MediaQueueApp
import MediaQueueTestSupport
import Synchronization
import Testing

/// Tencent's own Python SDK (cos-python-sdk-v5 from PyPI, installed by scripts/test.sh into a
/// virtual environment) against a running MediaQueue: what a CI user's code would do.
@Suite struct SDKTests {
    static var python: String? { ProcessInfo.processInfo.environment["MEDIAQUEUE_TEST_PYTHON"] }

    @Test(.enabled(if: SDKTests.python != nil, "needs MEDIAQUEUE_TEST_PYTHON with cos-python-sdk-v5 (scripts/test.sh sets it)"))
    func tencentsPythonSDKDrivesTheAPI() async throws {
        let harness = try ServiceHarness {
            $0.credentials = "AKIDsdk:sdk-secret-key:\($0.bucket)"
        }
        let port = Mutex<Int?>(nil)
        let (_, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
        defer { service.cancel() }
        let listening = try await eventually("the API to listen") { port.withLock { $0 } }

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("e2e/cos_sdk_e2e.py").path
        let output = try await runCommand("/usr/bin/env", [
            "MQ_PORT=\(listening)", "MQ_BUCKET=\(harness.configuration.bucket)",
            "MQ_SECRET_ID=AKIDsdk", "MQ_SECRET_KEY=sdk-secret-key", try #require(Self.python), script,
        ], allowFailure: true)
        #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.hasSuffix("sdk: ok\n"), "\(output.stdout)")
    }
}
