import Foundation
import MediaQueueApp
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// The real `mediaqueue` binary given what an operator gets wrong: each mistake ends with a
/// non-zero status and one line saying what was wrong, and changes nothing.
@Suite(.timeLimit(.minutes(5))) struct CommandLineTests {
    /// Runs the command, which must fail; returns what it printed on standard error.
    func refusal(_ harness: ServiceHarness, _ arguments: [String], environment: [String: String] = [:]) async throws -> String {
        let output = try await harness.runCLI(arguments, environment: environment, allowFailure: true)
        #expect(output.status != 0, "\(arguments) succeeded: \(output.stdout)")
        #expect(!output.stderr.contains("NSCocoaErrorDomain") && !output.stderr.contains("Generic description"), "\(output.stderr)")
        return output.stderr
    }

    /// The storage folder names a bucket's folder after it: `..` reached the data folder itself.
    @Test func aBucketNameThatIsNotOneIsRefusedBeforeAnythingIsTouched() async throws {
        let harness = try ServiceHarness()
        _ = try await harness.cli(["queue", "create", "spare"])
        let database = harness.configuration.databasePath
        let before = try FileManager.default.attributesOfItem(atPath: database)[.size] as? Int

        for arguments in [
            ["objects", "ls", "--bucket", ".."],
            ["objects", "rm", "--bucket", "..", "mediaqueue.sqlite"],
            ["objects", "get", "--bucket", "..", "mediaqueue.sqlite", harness.configuration.dataDir + "-copy"],
            ["callbacks", "secret", "--bucket", "Bad/Name"],
            ["queue", "list", "--bucket", "../x"],
            ["queue", "delete", "spare", "--bucket", ".."],
        ] {
            let stderr = try await refusal(harness, arguments)
            #expect(stderr.contains("InvalidArgument") || stderr.contains("bucket"), "\(arguments): \(stderr)")
        }
        #expect(FileManager.default.fileExists(atPath: database))
        #expect(try FileManager.default.attributesOfItem(atPath: database)[.size] as? Int == before)
        #expect(!FileManager.default.fileExists(atPath: harness.configuration.dataDir + "-copy"))
        #expect(try await harness.cli(["queue", "list"]).contains("<Name>spare</Name>"))
    }

    /// Run outside serve's data folder, a read used to create an empty store there and answer
    /// from it ("no job …", a fresh queue-1).
    @Test func aReadingCommandWithoutAStoreSaysWhereItLookedAndCreatesNone() async throws {
        let harness = try ServiceHarness()
        for arguments in [["jobs", "get", "j1234"], ["queue", "list"], ["callbacks", "dead"], ["workflows", "list"]] {
            let stderr = try await refusal(harness, arguments)
            #expect(stderr.contains("no MediaQueue database at \(harness.configuration.databasePath)"), "\(arguments): \(stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: harness.configuration.databasePath))
        // Reading objects needs only the storage (an operator's machine may have only its settings),
        // but it must be there: a listing of a folder that is not would be empty.
        #expect(try await refusal(harness, ["objects", "ls"]).contains("no storage folder at \(harness.configuration.resolvedStorageDir)"))
        try FileManager.default.createDirectory(atPath: harness.bucketRoot + "/in", withIntermediateDirectories: true)
        try Data("seen".utf8).write(to: URL(fileURLWithPath: harness.bucketRoot + "/in/seen.txt"))
        #expect(try await harness.cli(["objects", "ls"]).hasSuffix("\tin/seen.txt\n"))
        #expect(try await harness.cli(["objects", "get", "in/seen.txt", harness.configuration.dataDir + "/copy.txt"]).contains("got in/seen.txt"))
        #expect(!FileManager.default.fileExists(atPath: harness.configuration.databasePath))
        // Setting up before the first serve still works.
        #expect(try await harness.cli(["queue", "create", "fast"]).contains("<Name>fast</Name>"))
        #expect(try await harness.cli(["queue", "list"]).contains("<Name>fast</Name>"))
    }

    @Test func optionsOutOfRangeAndUnreadableFilesAreNamed() async throws {
        let harness = try ServiceHarness()
        _ = try await harness.cli(["queue", "create", "spare"])
        #expect(try await refusal(harness, ["callbacks", "dead", "--limit", "0"]).contains("--limit must be at least 1"))
        #expect(try await refusal(harness, ["submit", "--request", "r.xml", "--timeout", "0"]).contains("--timeout must be at least 1"))
        #expect(try await refusal(harness, ["callbacks", "secret", "--grace-seconds", "60"]).contains("--grace-seconds goes with --rotate"))
        let missing = harness.configuration.dataDir + "/missing.xml"
        #expect(try await refusal(harness, ["submit", "--request", missing]).contains("cannot read \(missing): no such file"))
        #expect(try await refusal(harness, ["queue", "update", "spare", "--request", missing]).contains("cannot read \(missing): no such file"))
        #expect(try await refusal(harness, ["serve", "--role", ","]).contains("roles must name at least one"))
    }

    /// Every bucket has a queue-1 (made again by whichever node next uses it, while the others
    /// went on with the one they remembered), and a workflow's runs start on the queue it names:
    /// neither is deleted; a spare queue is.
    @Test func theDefaultQueueAndAQueueAWorkflowStartsOnAreNotDeleted() async throws {
        let harness = try ServiceHarness()
        let created = try await harness.cli(["queue", "create", "workflows"])
        let id = try #require(created.range(of: "<QueueId>").flatMap { start in
            created[start.upperBound...].range(of: "</QueueId>").map { String(created[start.upperBound..<$0.lowerBound]) }
        })
        _ = try await harness.cli(["queue", "create", "spare"])
        #expect(try await harness.cli(["queue", "list"]).contains("<Name>queue-1</Name>"))
        let store = try SQLiteJobStore(path: harness.configuration.databasePath)
        let topology = try XMLDocumentParser.parse("""
            <Topology><Dependencies><Start>Snapshot_1</Start><Snapshot_1>End</Snapshot_1></Dependencies>
            <Nodes><Start><Type>Start</Type><Input><QueueId>\(id)</QueueId><ObjectPrefix>in/</ObjectPrefix></Input></Start>
            <Snapshot_1><Type>Snapshot</Type><Operation/></Snapshot_1></Nodes></Topology>
            """)
        try await store.createDefinition(Definition(
            id: "w1", kind: .workflow, bucket: harness.configuration.bucket, name: "thumbnails", label: "Active", body: topology,
            createTime: Timestamp(seconds: 1), updateTime: Timestamp(seconds: 1)
        ))

        #expect(try await refusal(harness, ["queue", "delete", "queue-1"]).contains("default queue"))
        #expect(try await refusal(harness, ["queue", "delete", "workflows"]).contains("workflow w1 (thumbnails) starts its runs on \(id)"))
        #expect(try await harness.cli(["queue", "delete", "spare"]).contains("deleted"))
        let names = try await store.queues(bucket: harness.configuration.bucket).map(\.name)
        #expect(Set(names) == ["queue-1", "workflows"])
    }

    /// `objects put` and `ls` refuse what the API's PUT and list refuse, with the same words:
    /// the put failed inside a file copy with a raw error, or later in a job; the list of an
    /// impossible prefix was empty.
    @Test func objectsPutAndListRefuseWhatTheAPIRefuses() async throws {
        let harness = try ServiceHarness()
        _ = try await harness.cli(["queue", "create", "spare"])
        let file = harness.configuration.dataDir + "/upload.bin"
        try Data(repeating: 7, count: 100).write(to: URL(fileURLWithPath: file))
        _ = try await harness.cli(["objects", "put", file, "a"])

        let long = String(repeating: "n", count: 256)
        #expect(try await refusal(harness, ["objects", "put", file, "in/" + long]).contains("at most 255 between slashes"))
        #expect(try await refusal(harness, ["objects", "put", file, "a/b"]).contains("InvalidArgument: the object key a/b"))
        #expect(try await refusal(harness, ["objects", "ls", "../x"]).contains("prefix: its folder"))
        let large = try await refusal(harness, ["objects", "put", file, "big"], environment: ["MEDIAQUEUE_MAX_OBJECT_BYTES": "10"])
        #expect(large.contains("EntityTooLarge"), "\(large)")
        #expect(try await harness.cli(["objects", "ls"]).split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) } == ["a"])
    }

    /// postgres-nio describes every error with one placeholder; the operator needs the server's.
    @Test(.enabled(if: TestEnvironment.value("MEDIAQUEUE_TEST_DATABASE_URL") != nil))
    func aDatabaseThatRefusesTheLoginSaysWhy() async throws {
        let harness = try ServiceHarness()
        var url = try #require(URLComponents(string: TestDatabase.serverURL))
        url.password = "not-the-password"
        let stderr = try await refusal(harness, ["queue", "list"], environment: ["MEDIAQUEUE_DATABASE_URL": try #require(url.string)])
        #expect(stderr.contains("password authentication failed"), "\(stderr)")
        #expect(stderr.contains("28P01"), "\(stderr)")
        #expect(!stderr.contains("not-the-password"), "\(stderr)")
    }
}
