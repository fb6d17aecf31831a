import Foundation
import MediaQueueApp
import MediaQueueTestSupport
import Synchronization
import Testing

/// The key pair the SDK scripts sign with: give it to a harness as `credentials`.
func sdkCredentials(bucket: String) -> String { "AKIDsdk:sdk-secret-key:\(bucket)" }

/// Starts `harness`'s service, runs the SDK script `Tests/e2e/<name>` against its API with
/// `MQ_PORT`, `MQ_BUCKET`, the SDK's key pair and `environment`, and expects it to end by printing
/// `<done>`; then `afterwards` gets what it printed, while the service still runs (to wait for
/// what it still sends); the service stops after.
func runSDKScript(
    _ name: String, harness: ServiceHarness, environment: [String: String] = [:], done: String,
    afterwards: (String) async throws -> Void = { _ in }
) async throws {
    let port = Mutex<Int?>(nil)
    let (_, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
    defer { service.cancel() }
    let listening = try await eventually("the API to listen") { port.withLock { $0 } }
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("e2e/" + name).path
    let settings = ["MQ_PORT": String(listening), "MQ_BUCKET": harness.configuration.bucket, "MQ_SECRET_ID": "AKIDsdk", "MQ_SECRET_KEY": "sdk-secret-key"]
        .merging(environment) { $1 }
    let output = try await runCommand(
        "/usr/bin/env", settings.map { "\($0.key)=\($0.value)" }.sorted() + [try #require(SDKTests.python), script], allowFailure: true
    )
    #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
    #expect(output.stdout.hasSuffix(done + "\n"), "\(output.stdout)")
    try await afterwards(output.stdout)
}
