/// A job's state, spelled as CI spells it on the wire.
public enum JobState: String, Sendable, Hashable, CaseIterable {
    case submitted = "Submitted"
    case running = "Running"
    case success = "Success"
    case failed = "Failed"
    case pause = "Pause"
    case cancel = "Cancel"

    /// Whether the job has ended and will never run again.
    public var isTerminal: Bool {
        switch self {
        case .success, .failed, .cancel: true
        case .submitted, .running, .pause: false
        }
    }

    /// Parses CI's spelling, ignoring case.
    public init?(ciName: String) {
        guard let state = Self.allCases.first(where: { $0.rawValue.caseInsensitiveCompare(ciName) }) else { return nil }
        self = state
    }
}

extension String {
    /// ASCII case-insensitive equality, enough for CI's enumerated values.
    func caseInsensitiveCompare(_ other: String) -> Bool {
        self.utf8.count == other.utf8.count
            && zip(self.utf8, other.utf8).allSatisfy { Self.lower($0) == Self.lower($1) }
    }

    private static func lower(_ byte: UInt8) -> UInt8 {
        (byte >= 65 && byte <= 90) ? byte + 32 : byte
    }
}
