/// The fields of an `application/x-www-form-urlencoded` body or a query string: `+` is a space
/// and `%XX` a byte, as browsers send them; a `%` not followed by two hex digits stays a `%`
/// (the URL standard's percent-decoding).
public struct FormData: Sendable {
    private var values: [String: [String]] = [:]
    /// Every field as sent, in order, names and values decoded.
    public private(set) var pairs: [(name: String, value: String)] = []

    public init(_ encoded: String) {
        for pair in encoded.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0]), value = parts.count > 1 ? Self.decode(parts[1]) : ""
            values[name, default: []].append(value)
            pairs.append((name, value))
        }
    }

    /// The field's first value, trimmed; nil when absent or empty.
    public subscript(_ name: String) -> String? {
        guard let value = values[name]?.first?.trimmed, !value.isEmpty else { return nil }
        return value
    }

    /// Every value of a repeated field, as sent.
    public func all(_ name: String) -> [String] { values[name] ?? [] }

    /// The given fields that have a value, encoded for a query string (`a=1&b=2`), in that order.
    public func query(_ names: [String]) -> [String] {
        names.compactMap { name in self[name].map { "\(name)=\(URIEncoding.encode($0, keepSlash: true))" } }
    }

    private static func decode(_ text: Substring) -> String {
        let input = Array(text.utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(input.count)
        var index = 0
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "%"), index + 2 < input.count, let high = hexValue(input[index + 1]), let low = hexValue(input[index + 2]) {
                bytes.append(high << 4 | low)
                index += 3
                continue
            }
            bytes.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
            index += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
