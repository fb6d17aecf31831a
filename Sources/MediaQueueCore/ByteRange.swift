import Foundation

/// An HTTP `Range` request header for one range of bytes, as COS's GET Object takes it.
public enum ByteRange {
    /// `bytes=a-b`, `bytes=a-` or `bytes=-n` within `size` bytes; nil when it is not one range
    /// of bytes or none of it lies within the object.
    public static func parse(_ text: String, size: Int) -> Range<Int>? {
        guard text.hasPrefix("bytes="), !text.contains(",") else { return nil }
        let parts = text.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2 else { return nil }
        if parts[0].isEmpty {
            guard let suffix = Int(parts[1]), suffix > 0, size > 0 else { return nil }
            return max(0, size - suffix)..<size
        }
        guard let start = Int(parts[0]), start >= 0, start < size else { return nil }
        if parts[1].isEmpty { return start..<size }
        guard let end = Int(parts[1]), end >= start else { return nil }
        // `end` may be the largest Int, where `end + 1` would trap: it is past the object anyway.
        return start..<(end >= size ? size : end + 1)
    }
}
