/// An object key that stays inside its bucket: what `Input.Object`, `Output.Object` and fragment
/// keys must be before any storage sees them.
///
/// Refused: empty keys, keys longer than COS's 850 bytes, a leading `/`, empty, `.` or `..`
/// segments, NUL and other control characters, and segments starting with `.mediaqueue-`
/// (reserved for the staging folders of running jobs).
public struct ObjectKey: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    public static let maxLength = 850
    /// The longest part between slashes an upload may have: a file name on Linux file systems,
    /// which each part becomes (a staging file, on every storage).
    public static let maxPartBytes = 255
    /// Prefix of the folders in which running jobs stage their files; no key may name one.
    public static let reservedPrefix = ".mediaqueue-"

    /// Throws `ObjectKey.Invalid` saying what is wrong with `rawValue`.
    public init(_ rawValue: String) throws(Invalid) {
        if let problem = Self.problem(rawValue) { throw Invalid(key: rawValue, reason: problem) }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    /// The folder part (`a/b` of `a/b/c.mp4`); empty at the bucket's top.
    public var folder: String {
        guard let slash = rawValue.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "" }
        return String(decoding: rawValue.utf8[..<slash], as: UTF8.self)
    }

    /// The last segment (`c.mp4` of `a/b/c.mp4`).
    public var fileName: String { Self.lastSegment(of: rawValue) }

    /// What follows the last `/` of `key` (all of it when there is none), split by bytes as the
    /// file system splits it.
    public static func lastSegment(of key: String) -> String {
        guard let slash = key.utf8.lastIndex(of: UInt8(ascii: "/")) else { return key }
        return String(decoding: key.utf8[key.utf8.index(after: slash)...], as: UTF8.self)
    }

    /// What comes before the last `/` of `key` (a key or a listing's prefix); nil without one.
    /// By bytes, as `lastSegment`: a `/` followed by a combining mark is one Character with it,
    /// which a search for the Character "/" does not find.
    public static func folder(of key: String) -> String? {
        guard let slash = key.utf8.lastIndex(of: UInt8(ascii: "/")) else { return nil }
        return String(decoding: key.utf8[..<slash], as: UTF8.self)
    }

    /// Why `key` is not a key inside a bucket, or nil when it is one.
    public static func problem(_ key: String) -> String? {
        if key.isEmpty { return "is empty" }
        if key.utf8.count > maxLength { return "is longer than \(maxLength) bytes" }
        if key.hasPrefix("/") { return "starts with '/'" }
        if key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0.value == 0xFFFE || $0.value == 0xFFFF }) {
            return "contains a control character or one XML cannot carry"
        }
        // By bytes, as the file system sees the key: split into Characters, a '/' followed by a
        // combining mark would not separate segments, and "../\u{301}x" would pass.
        let reserved = Array(reservedPrefix.utf8)
        for segment in key.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if segment.isEmpty { return "has an empty segment ('//' or a trailing '/')" }
            if segment.elementsEqual(".".utf8) || segment.elementsEqual("..".utf8) {
                return "has a '\(String(decoding: segment, as: UTF8.self))' segment"
            }
            if segment.starts(with: reserved) { return "has a segment starting with '\(reservedPrefix)', which is reserved" }
        }
        return nil
    }

    /// A key that is not inside its bucket.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public var key: String
        public var reason: String

        public var description: String { "'\(key)' is not a key inside the bucket: it \(reason)" }
    }
}
