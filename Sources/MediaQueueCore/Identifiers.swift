/// A media job's id: `j` followed by 32 lowercase hex digits, as CI prints them.
public struct JobID: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static func generate() -> JobID { JobID(rawValue: "j" + randomHex32()) }
    public var description: String { rawValue }
    public static func < (lhs: JobID, rhs: JobID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A media queue's id: `p` followed by 32 lowercase hex digits.
public struct QueueID: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static func generate() -> QueueID { QueueID(rawValue: "p" + randomHex32()) }
    public var description: String { rawValue }
    public static func < (lhs: QueueID, rhs: QueueID) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Whether `string` has the shape of a queue id (so `queue update X` can tell ids from names).
    public static func looksLikeID(_ string: String) -> Bool {
        string.utf8.count == 33 && string.first == "p" && string.dropFirst().allSatisfy(\.isHexDigit)
    }
}

/// 128 random bits as 32 lowercase hex digits (ids of jobs, queues and events).
public func randomHex32() -> String {
    var generator = SystemRandomNumberGenerator()
    let digits = Array("0123456789abcdef".utf8)
    var bytes = [UInt8](repeating: 0, count: 32)
    for half in 0..<2 {
        var value = generator.next() as UInt64
        for index in 0..<16 {
            bytes[half * 16 + index] = digits[Int(value & 0xF)]
            value >>= 4
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
