import MediaQueueApp
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
    }

    @Test func aBadRegionEntryIsRefusedWithoutItsPassword() {
        let message = refusal(["MEDIAQUEUE_MQ_REGIONS": "sh=amqp://u:p1@a/,amqp://u:SecondSecret@b/"])
        #expect(message?.contains("mqRegions") == true)
        #expect(message?.contains("SecondSecret") == false)
    }
}
