import Foundation
import Logging
@testable import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
@testable import MediaQueueSQLite
import Testing

/// Settings that would start a node that cannot work, or work otherwise than asked, are refused at
/// start with a message naming them, and never repeat a password.
@Suite struct ConfigurationTests {
    /// Why `serve` (with `--role roles`, if given) would refuse these settings, if it would.
    func refusal(_ environment: [String: String], roles: String? = nil) -> String? {
        do {
            try MediaQueueConfiguration.load(file: nil, environment: environment, roles: roles).checkToolsForServing()
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func settingsThatLeaveANodeUnableToWorkAreRefused() {
        #expect(refusal(["MEDIAQUEUE_ROLES": ""])?.contains("roles") == true, "no role: a node that runs nothing")
        #expect(refusal(["MEDIAQUEUE_DATABASE_MAX_CONNECTIONS": "0"])?.contains("databaseMaxConnections") == true)
        #expect(refusal(["MEDIAQUEUE_LOG_LEVEL": "warn"])?.contains("logLevel") == true, "not silently info")
        #expect(refusal(["MEDIAQUEUE_UTC_OFFSET": "+0099"])?.contains("utcOffset") == true)
        #expect(refusal(["MEDIAQUEUE_UTC_OFFSET": "+-100"])?.contains("utcOffset") == true)
        #expect(refusal(["MEDIAQUEUE_FFMPEG": "/nonexistent/ffmpeg"])?.contains("/nonexistent/ffmpeg") == true)
        #expect(refusal(["MEDIAQUEUE_FFMPEG": "/nonexistent/ffmpeg", "MEDIAQUEUE_ROLES": "relay,api"]) == nil, "only the dispatch role runs it")
        // `serve --role` is applied before the checks, not after them.
        #expect(refusal(["MEDIAQUEUE_FFMPEG": "/nonexistent/ffmpeg"], roles: "relay,api") == nil)
        #expect(refusal([:], roles: ",")?.contains("roles") == true)
        #expect(refusal([:], roles: "api,worker")?.contains("unknown role 'worker'") == true)
        // The one-shot commands run no ffmpeg: they load settings without it.
        #expect((try? MediaQueueConfiguration.load(file: nil, environment: ["MEDIAQUEUE_FFMPEG": "/nonexistent/ffmpeg"])) != nil)
        #expect(refusal(["MEDIAQUEUE_LOG_LEVEL": "warning", "MEDIAQUEUE_UTC_OFFSET": "-0530"]) == nil)
        // S3 takes no single PUT or part over 5 GiB: refused at start, not after the upload.
        let s3 = ["MEDIAQUEUE_S3_ENDPOINT": "http://127.0.0.1:9", "MEDIAQUEUE_S3_ACCESS_KEY_ID": "k", "MEDIAQUEUE_S3_SECRET_ACCESS_KEY": "s"]
        #expect(refusal(s3.merging(["MEDIAQUEUE_S3_MULTIPART_THRESHOLD_BYTES": String(6 << 30)]) { $1 })?.contains("5 GiB") == true)
        #expect(refusal(s3.merging(["MEDIAQUEUE_S3_PART_BYTES": String(6 << 30)]) { $1 })?.contains("s3PartBytes") == true)
        #expect(refusal(s3) == nil)
    }

    @Test func aConfigurationFileThatCannotBeReadOrParsedIsNamedInOneLine() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("config") + ".json").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Data(#"{"bucket": "a-1250000000""#.utf8).write(to: URL(fileURLWithPath: file))
        #expect(throws: ConfigurationError.self) { try MediaQueueConfiguration.load(file: file, environment: [:]) }
        for (path, expected) in [(file, "is not valid JSON"), (file + ".missing", "cannot read the configuration file")] {
            do {
                _ = try MediaQueueConfiguration.load(file: path, environment: [:])
                Issue.record("\(path) was loaded")
            } catch {
                #expect("\(error)".hasPrefix(path + ": "), "\(error)")
                #expect("\(error)".contains(expected), "\(error)")
                #expect(!"\(error)".contains("NSCocoaErrorDomain"), "\(error)")
            }
        }
    }

    /// The configuration's own queue names, and the bucket prefix when set, reach both the rules
    /// (API, console, CLI) and the jobs' own callbacks (API and intake).
    @Test func tdmqCallbacksAreKeptOffTheServicesQueuesAndWithThePrefixToTheirBucket() async throws {
        var configuration = try MediaQueueConfiguration.load(file: nil, environment: ["MEDIAQUEUE_CALLBACK_MQ_BUCKET_PREFIX": "true"])
        configuration.dataDir = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("mq-data")).path
        defer { try? FileManager.default.removeItem(atPath: configuration.dataDir) }
        var rule = NotifyConfig()
        rule.isOn = true
        rule.type = .tdmq
        rule.mqName = configuration.deadLetterQueue
        #expect(throws: CIError.self) { try configuration.checkCallbackRule(rule, bucket: configuration.bucket) }
        rule.mqName = "other-1250000000.done"
        #expect(throws: CIError.self) { try configuration.checkCallbackRule(rule, bucket: configuration.bucket) }
        rule.mqName = configuration.bucket + ".done"
        #expect(throws: Never.self) { try configuration.checkCallbackRule(rule, bucket: configuration.bucket) }

        let application = try MediaQueueApplication(configuration: configuration, logger: Logger(label: "configuration-test"))
        let factory = application.submissionFactory(application.workers)
        func submission(mqName: String) async -> Result<Submission, CIError> {
            let body = """
                <Request><Tag>Snapshot</Tag><Input><Object>a.mp4</Object></Input><Operation><Snapshot><Start>0</Start></Snapshot>\
                <Output><Object>a.jpg</Object></Output></Operation><CallBackType>TDMQ</CallBackType>\
                <CallBackMqConfig><MqRegion>gz</MqRegion><MqName>\(mqName)</MqName></CallBackMqConfig></Request>
                """
            return await factory.submission(body: Array(body.utf8), bucket: configuration.bucket, idempotencyKey: nil, now: Timestamp(seconds: 1))
        }
        guard case .failure(let intake) = await submission(mqName: configuration.intakeQueue) else {
            Issue.record("a job's callback named the intake queue")
            return
        }
        #expect(intake.element == "CallBackMqConfig.MqName")
        await #expect(throws: Never.self) { try await submission(mqName: configuration.bucket + ".done").get() }
    }

    /// A yes-or-no setting that is neither counted as the default (`MEDIAQUEUE_METRICS=disabled`
    /// left metrics on), a misspelt variable did nothing unseen, and an empty data folder put the
    /// database at `/mediaqueue.sqlite`.
    @Test func yesOrNoSettingsMisspeltVariablesAndAnEmptyDataFolder() throws {
        #expect(refusal(["MEDIAQUEUE_METRICS": "disabled"])?.contains("metrics must be true or false, not 'disabled'") == true)
        #expect(refusal(["MEDIAQUEUE_ANONYMOUS": "enabled"])?.contains("anonymous") == true)
        #expect(try MediaQueueConfiguration.load(file: nil, environment: ["MEDIAQUEUE_METRICS": "Off"]).metrics == false)
        #expect(try MediaQueueConfiguration.load(file: nil, environment: ["MEDIAQUEUE_ANONYMOUS": " YES"]).anonymous == true)

        let loaded = try MediaQueueConfiguration.load(file: nil, environment: [
            "MEDIAQUEUE_MAX_RUNING_JOBS": "4", "MEDIAQUEUE_TEST_AMQP_URL": "amqp://x/", "MEDIAQUEUE_FAULT_POINT": "job-starting",
            "MEDIAQUEUE_MAX_RUNNING_JOBS": "5", "MEDIAQUEUE_DATA_DIR": "",
        ])
        #expect(loaded.unknownVariables == ["MEDIAQUEUE_MAX_RUNING_JOBS"])
        #expect(loaded.maxRunningJobs == 5)
        #expect(loaded.dataDir == MediaQueueConfiguration().dataDir)
    }

    @Test func aBadRegionEntryIsRefusedWithoutItsPassword() {
        let message = refusal(["MEDIAQUEUE_MQ_REGIONS": "sh=amqp://u:p1@a/,amqp://u:SecondSecret@b/"])
        #expect(message?.contains("mqRegions") == true)
        #expect(message?.contains("SecondSecret") == false)
    }

    /// A process that does not dispatch (`--role intake`, `api`, `relay` beside a dispatcher on
    /// the same folder) kept up to 20,000 parsed jobs it never claims.
    @Test func onlyADispatchingProcessKeepsItsSubmittedJobsInMemory() throws {
        var configuration = try ServiceHarness().configuration
        configuration.metrics = false
        for (roles, limit) in [([MediaQueueConfiguration.Role.intake, .api], 0), ([.intake, .dispatch], 20_000)] {
            configuration.roles = Set(roles)
            let application = try MediaQueueApplication(configuration: configuration, logger: Logger(label: "configuration-test"))
            #expect(try #require(application.store as? SQLiteJobStore).recentJobs.limit == limit, "\(roles)")
        }
    }
}
