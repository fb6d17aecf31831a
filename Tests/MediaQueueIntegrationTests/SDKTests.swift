import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MediaQueueApp
import MediaQueueTestSupport
import Synchronization
import Testing

/// Tencent's own Python SDK (cos-python-sdk-v5 from PyPI, installed by scripts/test.sh into a
/// virtual environment) against a running MediaQueue: what a CI user's code would do.
@Suite struct SDKTests {
    static var python: String? { ProcessInfo.processInfo.environment["MEDIAQUEUE_TEST_PYTHON"] }

    @Test(
        .enabled(if: SDKTests.python != nil, "needs MEDIAQUEUE_TEST_PYTHON with cos-python-sdk-v5 (scripts/test.sh sets it)"),
        arguments: ["http", "https"]
    )
    func tencentsPythonSDKDrivesTheAPI(scheme: String) async throws {
        // For HTTPS, a throwaway test CA's certificate for 127.0.0.1; the SDK (requests) trusts that CA only.
        let tls = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("api-tls")).path
        if scheme == "https" {
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("scripts/make-test-tls.sh").path
            _ = try await runCommand(script, [tls])
        }
        let harness = try ServiceHarness {
            $0.credentials = "AKIDsdk:sdk-secret-key:\($0.bucket)"
            if scheme == "https" {
                $0.tlsCertificateFile = tls + "/server.pem"
                $0.tlsKeyFile = tls + "/server.key"
            }
        }
        let port = Mutex<Int?>(nil)
        let (_, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
        defer { service.cancel() }
        let listening = try await eventually("the API to listen") { port.withLock { $0 } }

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("e2e/cos_sdk_e2e.py").path
        let output = try await runCommand("/usr/bin/env", [
            "MQ_PORT=\(listening)", "MQ_BUCKET=\(harness.configuration.bucket)", "MQ_SCHEME=\(scheme)", "REQUESTS_CA_BUNDLE=\(tls)/ca.pem",
            "MQ_SECRET_ID=AKIDsdk", "MQ_SECRET_KEY=sdk-secret-key", try #require(Self.python), script,
        ], allowFailure: true)
        #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.hasSuffix("sdk: ok\n"), "\(output.stdout)")
        if scheme == "https" {
            // Signed in to the console over this server's own TLS, the session cookie is Secure:
            // a browser never sends it over plain HTTP.
            let signIn = """
                import requests, sys
                url = "https://127.0.0.1:\(listening)"
                r = requests.post(url + "/console/login", data={"secretId": "AKIDsdk", "secretKey": "sdk-secret-key"},
                                  headers={"Origin": url}, allow_redirects=False, verify=sys.argv[1])
                print(r.status_code, r.headers.get("Set-Cookie"))
                """
            let signedIn = try await runCommand(try #require(Self.python), ["-c", signIn, "\(tls)/ca.pem"])
            #expect(signedIn.stdout.hasPrefix("30"), "signed in and sent on: \(signedIn.stdout)\n\(signedIn.stderr)")
            #expect(signedIn.stdout.contains("; Secure"), "\(signedIn.stdout)")
            // Plain HTTP to a TLS port gets no API answer.
            let plain = try? await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(listening)/readyz")!)
            #expect((plain?.1 as? HTTPURLResponse)?.statusCode != 200)
        }
    }
}
