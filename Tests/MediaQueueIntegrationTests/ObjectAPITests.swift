import Foundation
import MediaQueueApp
import MediaQueueTestSupport
import Synchronization
import Testing

/// The COS object calls (put, get, head, list, delete) through a running service, driven by
/// Tencent's own Python SDK, with `mediaqueue objects` on the same storage: the storage folder,
/// and an S3 store (moto's server).
@Suite struct ObjectAPITests {
    @Test(
        .enabled(if: SDKTests.python != nil, "needs MEDIAQUEUE_TEST_PYTHON with cos-python-sdk-v5 (scripts/test.sh sets it)"),
        arguments: ["folder"] + (S3TestStore.isAvailable ? ["s3"] : [])
    )
    func theSDKsObjectCallsMoveFilesAndTheCLISeesThem(storage: String) async throws {
        let bucket = storage == "s3" ? try await S3TestStore.createBucket() : "test-1250000000"
        let harness = try ServiceHarness { configuration in
            configuration.bucket = bucket
            configuration.credentials = "AKIDsdk:sdk-secret-key:\(bucket)"
            if storage == "s3" { S3TestStore.configure(&configuration) }
        }
        let local = harness.configuration.dataDir + "-cli.bin"
        let cliBytes = 200_001
        try Data((0..<cliBytes).map { UInt8(truncatingIfNeeded: $0 * 7) }).write(to: URL(fileURLWithPath: local))
        #expect(try await harness.cli(["objects", "put", local, "cli/put.bin"]).contains("put cli/put.bin"))

        let port = Mutex<Int?>(nil)
        let (_, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
        defer { service.cancel() }
        let listening = try await eventually("the API to listen") { port.withLock { $0 } }

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("e2e/cos_objects_e2e.py").path
        let output = try await runCommand("/usr/bin/env", [
            "MQ_PORT=\(listening)", "MQ_BUCKET=\(harness.configuration.bucket)", "MQ_SECRET_ID=AKIDsdk", "MQ_SECRET_KEY=sdk-secret-key",
            "MQ_CLI_KEY=cli/put.bin", "MQ_CLI_BYTES=\(cliBytes)", try #require(SDKTests.python), script,
        ], allowFailure: true)
        #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.hasSuffix("objects: ok\n"), "\(output.stdout)")

        // What the SDK put, the CLI lists and downloads.
        let listing = try await harness.cli(["objects", "ls", "--delimiter", "/", "in/"])
        #expect(listing.contains("PRE in/sub/"), "\(listing)")
        #expect(listing.contains("\tin/big.bin\n"), "\(listing)")
        #expect(!listing.contains("in/a.mp4"), "deleted through the API: \(listing)")
        let copy = harness.configuration.dataDir + "-top.txt"
        _ = try await harness.cli(["objects", "get", "top.txt", copy])
        #expect(try String(contentsOfFile: copy, encoding: .utf8) == "top.txt")
    }
}
