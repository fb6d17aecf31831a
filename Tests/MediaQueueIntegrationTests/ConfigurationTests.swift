import Logging
import MediaQueueApp
@testable import MediaQueueSQLite
import Testing

/// Settings that would start a node that cannot work, or work otherwise than asked, are refused at
/// start with a message naming them, and never repeat a password.
@Suite struct ConfigurationTests {
    func refusal(_ environment: [String: String]) -> String? {
        do {
            _ = try MediaQueueConfiguration.load(file: nil, environment: environment)
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
        #expect(refusal(["MEDIAQUEUE_LOG_LEVEL": "warning", "MEDIAQUEUE_UTC_OFFSET": "-0530"]) == nil)
        // S3 takes no single PUT or part over 5 GiB: refused at start, not after the upload.
        let s3 = ["MEDIAQUEUE_S3_ENDPOINT": "http://127.0.0.1:9", "MEDIAQUEUE_S3_ACCESS_KEY_ID": "k", "MEDIAQUEUE_S3_SECRET_ACCESS_KEY": "s"]
        #expect(refusal(s3.merging(["MEDIAQUEUE_S3_MULTIPART_THRESHOLD_BYTES": String(6 << 30)]) { $1 })?.contains("5 GiB") == true)
        #expect(refusal(s3.merging(["MEDIAQUEUE_S3_PART_BYTES": String(6 << 30)]) { $1 })?.contains("s3PartBytes") == true)
        #expect(refusal(s3) == nil)
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
