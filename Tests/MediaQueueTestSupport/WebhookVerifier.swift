import Foundation

/// Checks a Standard Webhooks signature with code we did not write: Python's `hmac`, following
/// the specification, and, when `scripts/test.sh` could install it, the `standardwebhooks`
/// package from PyPI (its `Webhook.verify`).
public enum WebhookVerifier {
    /// What each verifier said: `["stdlib": "ok", "standardwebhooks": "ok"]`.
    public static func verify(secret: String, headers: [String: String], body: [UInt8]) async throws -> [String: String] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("webhook"))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let bodyPath = folder.appendingPathComponent("body").path
        let scriptPath = folder.appendingPathComponent("verify.py").path
        try Data(body).write(to: URL(fileURLWithPath: bodyPath))
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let arguments = [
            scriptPath, secret, headers["webhook-id"] ?? "", headers["webhook-timestamp"] ?? "", headers["webhook-signature"] ?? "", bodyPath,
        ]
        let output = try await runCommand(python, hasPackage ? arguments : ["python3"] + arguments)
        var results: [String: String] = [:]
        for line in output.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            if parts.count == 2 { results[parts[0]] = parts[1] }
        }
        return results
    }

    /// Whether the `standardwebhooks` package is there (the venv that `scripts/test.sh` makes).
    public static var hasPackage: Bool { TestEnvironment.value("MEDIAQUEUE_TEST_WEBHOOKS_PYTHON") != nil }

    static var python: String { TestEnvironment.value("MEDIAQUEUE_TEST_WEBHOOKS_PYTHON") ?? "/usr/bin/env" }

    static let script = """
        import base64, hashlib, hmac, sys
        secret, msg_id, timestamp, signature, body_path = sys.argv[1:6]
        body = open(body_path, "rb").read()
        # The specification: HMAC-SHA256 over "id.timestamp.body" with the base64-decoded bytes
        # after "whsec_"; the header holds space-separated "v1,<base64>" signatures.
        key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
        expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        ok = any(
            part.startswith("v1,") and hmac.compare_digest(base64.b64decode(part[3:]), expected)
            for part in signature.split(" ")
        )
        print("stdlib", "ok" if ok else "mismatch")
        try:
            from standardwebhooks.webhooks import Webhook
        except ImportError:
            sys.exit(0)
        try:
            Webhook(secret).verify(body, {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}, json_parse=False)
            print("standardwebhooks", "ok")
        except Exception as error:
            print("standardwebhooks", "mismatch:", error)
        """
}
