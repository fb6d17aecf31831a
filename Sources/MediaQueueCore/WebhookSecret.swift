/// A bucket's secret for signing HTTP callbacks (Standard Webhooks): `whsec_` followed by the
/// base64 of 32 random bytes. Receivers verify with the bytes after the prefix.
public enum WebhookSecret {
    public static let prefix = "whsec_"

    /// A new secret from the system's cryptographically secure generator.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return prefix + base64(bytes)
    }

    /// Standard base64 with padding.
    public static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var chunk = UInt32(bytes[index]) << 16
            if count > 1 { chunk |= UInt32(bytes[index + 1]) << 8 }
            if count > 2 { chunk |= UInt32(bytes[index + 2]) }
            for position in 0..<4 {
                if position <= count {
                    output.append(alphabet[Int((chunk >> UInt32(18 - 6 * position)) & 0x3F)])
                } else {
                    output.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes standard base64 (padding optional); nil for anything else.
    public static func decodeBase64(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(byte - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(byte - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): values.append(62)
            case UInt8(ascii: "/"): values.append(63)
            case UInt8(ascii: "="): continue
            default: return nil
            }
        }
        guard values.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        var index = 0
        while index < values.count {
            let group = values[index..<min(index + 4, values.count)]
            var chunk: UInt32 = 0
            for (position, value) in group.enumerated() { chunk |= UInt32(value) << UInt32(18 - 6 * position) }
            let produced = group.count - 1
            for position in 0..<produced { output.append(UInt8((chunk >> UInt32(16 - 8 * position)) & 0xFF)) }
            index += 4
        }
        return output
    }

    /// The key bytes of a `whsec_…` secret.
    public static func keyBytes(_ secret: String) -> [UInt8]? {
        decodeBase64(secret.hasPrefix(prefix) ? String(secret.dropFirst(prefix.count)) : secret)
    }
}

/// A bucket's secrets for signing HTTP callbacks: the current one, and after a rotation the one
/// it replaced, still signed with until its grace period ends, so receivers can switch over
/// without missing a delivery (Standard Webhooks sends several `v1,` signatures).
public struct SigningSecrets: Sendable, Hashable {
    public var current: String
    public var previous: String?
    /// The end of `previous`'s grace period.
    public var previousUntil: Timestamp?

    public init(current: String, previous: String? = nil, previousUntil: Timestamp? = nil) {
        self.current = current
        self.previous = previous
        self.previousUntil = previousUntil
    }

    /// The secrets to sign with at `now`: the current one, then the previous one while its grace lasts.
    public func active(at now: Timestamp) -> [String] {
        guard let previous, let previousUntil, now < previousUntil else { return [current] }
        return [current, previous]
    }

    /// After a rotation at `now`: a new current secret, and this one's current kept for `grace`.
    public func rotated(now: Timestamp, grace: Duration, newSecret: String = WebhookSecret.generate()) -> SigningSecrets {
        SigningSecrets(current: newSecret, previous: current, previousUntil: now + grace)
    }
}
