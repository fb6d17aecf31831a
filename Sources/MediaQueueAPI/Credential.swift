public import MediaQueueCore

/// A SecretId/SecretKey pair and the buckets it may use.
public struct Credential: Sendable, Hashable, CustomStringConvertible {
    public var secretID: String
    public var secretKey: String
    public var buckets: Set<String>

    public init(secretID: String, secretKey: String, buckets: Set<String>) {
        self.secretID = secretID
        self.secretKey = secretKey
        self.buckets = buckets
    }

    /// Never shows the key.
    public var description: String { "Credential(\(secretID), buckets: \(buckets.sorted().joined(separator: ",")))" }

    /// Parses `SecretId:SecretKey:bucket1,bucket2;SecretId2:…` (the form of `MEDIAQUEUE_CREDENTIALS`).
    public static func parseList(_ text: String) throws(CIError) -> [Credential] {
        var credentials: [Credential] = []
        for entry in text.split(separator: ";") where !entry.allSatisfy(\.isWhitespace) {
            let parts = entry.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map { String($0).trimmed }
            guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else {
                throw CIError(.invalidArgument, "credentials look like SecretId:SecretKey:bucket1,bucket2 (entry \(credentials.count + 1) does not)")
            }
            let buckets = Set(parts[2].split(separator: ",").map { String($0).trimmed })
            for bucket in buckets { try BucketName.validate(bucket) }
            credentials.append(Credential(secretID: parts[0], secretKey: parts[1], buckets: buckets))
        }
        return credentials
    }
}
