import Glibc
import Synchronization

/// A media job's id: `j` followed by 32 lowercase hex digits, as CI prints them.
public struct JobID: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static func generate() -> JobID { JobID(rawValue: "j" + timeOrderedHex32()) }

    /// Ids as the stores keep an idempotency key's jobs: comma-separated (ids hold no comma).
    public static func joined(_ ids: [JobID]) -> String { ids.map(\.rawValue).joined(separator: ",") }

    /// The ids `joined` wrote.
    public static func split(_ joined: String) -> [JobID] { joined.split(separator: ",").map { JobID(rawValue: String($0)) } }
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
    hex32(high: bufferedRandom.next(), low: bufferedRandom.next())
}

/// 32 lowercase hex digits that start with the wall-clock time in milliseconds (48 bits) and end
/// with 80 random bits, like a UUIDv7 (ids of jobs and events).
///
/// Why: the store indexes these ids. Random ids land all over an index, so every batch of
/// inserts rewrites a page per id; ids that grow with time are appended to the same few pages.
/// 80 random bits keep them unique (and unguessable) among the ids of one millisecond.
public func timeOrderedHex32() -> String {
    timeOrderedHex32(at: wallMilliseconds())
}

/// `timeOrderedHex32` for a given time (milliseconds since the epoch).
func timeOrderedHex32(at wallMilliseconds: Int64) -> String {
    let milliseconds = UInt64(max(0, wallMilliseconds)) & 0xFFFF_FFFF_FFFF
    let random = bufferedRandom.next()
    return hex32(high: milliseconds << 16 | random >> 48, low: bufferedRandom.next())
}

/// The smallest value `timeOrderedHex32` can return at `time`: every id made at or after that
/// millisecond sorts at or after it (a store finds events made around a time by id alone).
package func timeOrderedHex32Floor(at time: Timestamp) -> String {
    hex32(high: (UInt64(max(0, time.milliseconds)) & 0xFFFF_FFFF_FFFF) << 16, low: 0)
}

/// The system's random bytes (getrandom), fetched 4 KiB at a time.
///
/// Why: `SystemRandomNumberGenerator` makes a getrandom system call for every 64-bit value, four
/// per job (its id and its event's id); a busy service spent about 1 % of its CPU in them. The
/// values are the same kernel randomness, taken from a buffer under a lock.
private let bufferedRandom = BufferedSystemRandom()

private final class BufferedSystemRandom: Sendable {
    private struct State {
        var words = [UInt64](repeating: 0, count: 512)
        var next = 512
    }
    private let state = Mutex(State())

    func next() -> UInt64 {
        state.withLock { state in
            if state.next == state.words.count {
                // glibc's arc4random_buf: one getrandom call for the whole buffer.
                state.words.withUnsafeMutableBytes { bytes in
                    if let base = bytes.baseAddress { arc4random_buf(base, bytes.count) }
                }
                state.next = 0
            }
            state.next += 1
            return state.words[state.next - 1]
        }
    }
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
