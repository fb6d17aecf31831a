/// A media job's id: `j` followed by 32 lowercase hex digits, as CI prints them.
public struct JobID: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static func generate() -> JobID { JobID(rawValue: "j" + timeOrderedHex32()) }
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

/// 128 random bits as 32 lowercase hex digits (ids of queues, request ids).
public func randomHex32() -> String {
    var generator = SystemRandomNumberGenerator()
    return hex32(high: generator.next(), low: generator.next())
}

/// 32 lowercase hex digits that start with the wall-clock time in milliseconds (48 bits) and end
/// with 80 random bits, like a UUIDv7 (ids of jobs and events).
///
/// Why: the store indexes these ids. Random ids land all over an index, so every batch of
/// inserts rewrites a page per id; ids that grow with time are appended to the same few pages.
/// 80 random bits keep them unique (and unguessable) among the ids of one millisecond.
public func timeOrderedHex32() -> String {
    var generator = SystemRandomNumberGenerator()
    let milliseconds = UInt64(max(0, wallMilliseconds())) & 0xFFFF_FFFF_FFFF
    let random = generator.next() as UInt64
    return hex32(high: milliseconds << 16 | random >> 48, low: generator.next())
}

private func hex32(high: UInt64, low: UInt64) -> String {
    String(unsafeUninitializedCapacity: 32) { buffer in
        let digits: StaticString = "0123456789abcdef"
        for index in 0..<16 {
            let shift = UInt64(60 - 4 * index)
            buffer[index] = digits.utf8Start[Int(high >> shift & 0xF)]
            buffer[16 + index] = digits.utf8Start[Int(low >> shift & 0xF)]
        }
        return 32
    }
}
