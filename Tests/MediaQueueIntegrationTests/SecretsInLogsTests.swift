import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MediaQueueApp
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import Testing

/// A real `mediaqueue serve` at log level `trace`, used the way its secrets get used (console
/// sign-ins with a key and with the admin token, a job whose signed callback is delivered, the
/// broker reached with a password, and refused with a wrong one): no secret appears in its log.
@Suite struct SecretsInLogsTests {
    /// The broker as a user whose password appears nowhere else (`scripts/test.sh` adds it).
    static var secretAMQPURL: String? { TestEnvironment.value("MEDIAQUEUE_TEST_SECRET_AMQP_URL") }

    static func password(of url: String) -> String {
        let userInfo = url.split(separator: "@").first?.split(separator: "/").last ?? ""
        return String(userInfo.split(separator: ":", maxSplits: 1).last ?? "")
    }

    @Test(
        .enabled(if: CrashTests.binary != nil, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"),
        .enabled(if: secretAMQPURL != nil, "needs MEDIAQUEUE_TEST_SECRET_AMQP_URL (scripts/test.sh sets it)")
    )
    func noSecretAppearsInATraceLevelLog() async throws {
        let amqpURL = try #require(Self.secretAMQPURL)
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 1)
        let receiver = try TestHTTPReceiver()
        let secretKey = "SecretKey-\(UUID().uuidString)"
        let adminToken = "AdminToken-\(UUID().uuidString)"
        let sessionKey = "SessionKey-\(UUID().uuidString)"
        let log = harness.configuration.dataDir + "/serve.log"
        let serve = try ChildProcess(
            try #require(CrashTests.binary), ["serve"],
            environment: harness.serveEnvironment([
                "MEDIAQUEUE_LOG_LEVEL": "trace", "MEDIAQUEUE_CREDENTIALS": "AKIDlogs:\(secretKey):\(harness.configuration.bucket)",
                "MEDIAQUEUE_CONSOLE_ADMIN_TOKEN": adminToken, "MEDIAQUEUE_CONSOLE_SESSION_KEY": sessionKey,
                "MEDIAQUEUE_CALLBACK_ALLOWED_NETWORKS": "127.0.0.0/8", "MEDIAQUEUE_AMQP_URL": amqpURL,
            ]),
            logPath: log
        )
        defer { Task { await serve.stop() } }
        let port = try await eventually("the API to listen") { () -> Int? in
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            guard let line = text.split(separator: "\n").first(where: { $0.contains("API listening on http://127.0.0.1:") }) else { return nil }
            return Int(line.split(separator: ":").last ?? "")
        }
        try await harness.waitForIntake()

        // Sign in to the console with the key, with the admin token, and once wrongly.
        for form in ["secretId=AKIDlogs&secretKey=\(secretKey)", "adminToken=\(adminToken)", "secretId=AKIDlogs&secretKey=\(secretKey)x"] {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/console/login")!)
            request.httpMethod = "POST"
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
            request.setValue("http://127.0.0.1:\(port)", forHTTPHeaderField: "Origin")
            request.httpBody = Data(form.utf8)
            _ = try await URLSession.shared.data(for: request)
        }
        // A job whose callback is signed with the bucket's webhook secret.
        try await harness.publish("""
            <Request><Tag>MediaInfo</Tag><Input><Object>input/a.mp4</Object></Input><Operation><UserData>logs</UserData></Operation>
            <CallBack>\(receiver.url())</CallBack></Request>
            """)
        try await eventually("the signed callback") { !receiver.requests.isEmpty }
        #expect(await serve.stop(SIGTERM) == 0, "a clean exit")

        let webhookSecret = try await SQLiteJobStore(path: harness.configuration.databasePath).webhookSecret(bucket: harness.configuration.bucket)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains(" trace "), "the log is at trace level")
        #expect(text.contains("console sign-in refused"), "the refused sign-in was logged, without its key")
        #expect(text.contains("amqp://mediaqueue-logs:***@"), "the broker's URL is logged with its password hidden")
        for (name, secret) in [("SecretKey", secretKey), ("admin token", adminToken), ("session key", sessionKey),
                               ("webhook secret", String(webhookSecret.dropFirst("whsec_".count))), ("AMQP password", Self.password(of: amqpURL))] {
            #expect(!text.contains(secret), "the \(name) appears in the log")
        }
    }

    @Test(.enabled(if: CrashTests.binary != nil, "needs MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY (scripts/test.sh sets it)"))
    func aBrokerRefusingTheWrongPasswordDoesNotGetItLogged() async throws {
        let harness = try ServiceHarness()
        let wrong = "WrongPassword-\(UUID().uuidString)"
        let url = harness.configuration.amqpURL.replacingOccurrences(of: "guest:guest@", with: "guest:\(wrong)@")
        #expect(url.contains(wrong))
        try FileManager.default.createDirectory(atPath: harness.configuration.dataDir, withIntermediateDirectories: true)
        let log = harness.configuration.dataDir + "/serve.log"
        let serve = try ChildProcess(
            try #require(CrashTests.binary), ["serve"],
            environment: harness.serveEnvironment(["MEDIAQUEUE_LOG_LEVEL": "trace", "MEDIAQUEUE_AMQP_URL": url]), logPath: log
        )
        defer { Task { await serve.stop() } }
        try await eventually("two refused connect attempts") {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").components(separatedBy: "AMQP connect attempt failed").count > 2
        }
        // SIGTERM ends a node that never reached its broker (the wait returns, nothing hangs on it).
        #expect(await serve.stop(SIGTERM) == 0, "a clean exit")
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("intake stopped before the broker was reached"))
        #expect(text.contains("ACCESS_REFUSED") || text.lowercased().contains("login"), "the refusal says why: \(text.suffix(1_000))")
        #expect(!text.contains(wrong), "the wrong password appears in the log")
    }
}
