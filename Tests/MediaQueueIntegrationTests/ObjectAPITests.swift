import Foundation
import MediaQueueApp
import MediaQueueTestSupport
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
            configuration.credentials = sdkCredentials(bucket: bucket)
            if storage == "s3" {
                S3TestStore.configure(&configuration)
                // Multipart uploads from 5 MiB, so that the script's 11 MiB object goes up in parts.
                (configuration.s3PartBytes, configuration.s3MultipartThresholdBytes) = (5 << 20, 5 << 20)
            }
        }
        let local = harness.configuration.dataDir + "-cli.bin"
        let cliBytes = 200_001
        try Data((0..<cliBytes).map { UInt8(truncatingIfNeeded: $0 * 7) }).write(to: URL(fileURLWithPath: local))
        #expect(try await harness.cli(["objects", "put", local, "cli/put.bin"]).contains("put cli/put.bin"))

        try await runSDKScript(
            "cos_objects_e2e.py", harness: harness, environment: ["MQ_CLI_KEY": "cli/put.bin", "MQ_CLI_BYTES": String(cliBytes), "MQ_STORAGE": storage], done: "objects: ok"
        )

        if storage == "s3" {
            // Each GET fetched its object into a temporary folder; none outlives its response.
            let scratch = harness.configuration.dataDir + "/s3-scratch/" + bucket
            try await eventually("the GETs' temporary copies to be removed") {
                let left = try FileManager.default.contentsOfDirectory(atPath: scratch)
                return !left.contains { $0.hasPrefix(".mediaqueue-download-") }
            }
        }

        // What the SDK put, the CLI lists and downloads.
        let listing = try await harness.cli(["objects", "ls", "--delimiter", "/", "in/"])
        #expect(listing.contains("PRE in/sub/"), "\(listing)")
        #expect(listing.contains("\tin/big.bin\n"), "\(listing)")
        #expect(!listing.contains("in/a.mp4"), "deleted through the API: \(listing)")
        let copy = harness.configuration.dataDir + "-top.txt"
        _ = try await harness.cli(["objects", "get", "top.txt", copy])
        #expect(try String(contentsOfFile: copy, encoding: .utf8) == "top.txt")
        // Into a folder, as cp does: the folder and what it held stay (it used to be removed
        // and replaced by the object).
        let folder = harness.configuration.dataDir + "-downloads"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: folder + "/kept.txt", contents: Data("mine".utf8)))
        let answer = try await harness.cli(["objects", "get", "top.txt", folder])
        #expect(answer.contains("as \(folder)/top.txt"), "\(answer)")
        #expect(try String(contentsOfFile: folder + "/top.txt", encoding: .utf8) == "top.txt")
        #expect(try String(contentsOfFile: folder + "/kept.txt", encoding: .utf8) == "mine")
    }
}
