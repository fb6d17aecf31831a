/// Which resolved addresses the HTTP client may connect to: the SSRF guard.
///
/// Checked at connect time, after DNS resolution (libcurl's `CURLOPT_OPENSOCKETFUNCTION`), so
/// a public name that resolves to a private address is refused as surely as a literal one, and
/// a DNS answer that changes between a check and the connect (DNS rebinding) gains nothing.
/// Refused: private (RFC 1918, IPv6 unique local), loopback, link-local, CGNAT (100.64.0.0/10),
/// multicast, and reserved or special-purpose ranges (unspecified, documentation, benchmarking,
/// 240.0.0.0/4 and broadcast, 6to4, discard, …), unless `allowedNetworks` contains the address.
/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`) addresses are judged by
/// their IPv4 address.
public struct AddressPolicy: Sendable, Hashable {
    /// Networks exempt from the guard (e.g. `127.0.0.0/8` for tests, or an internal receiver).
    public var allowedNetworks: [IPNetwork]

    public init(allowedNetworks: [IPNetwork] = []) {
        self.allowedNetworks = allowedNetworks
    }

    /// Public addresses only.
    public static let publicOnly = AddressPolicy()

    /// Why `address` may not be connected to, or nil when it may.
    public func refusal(for address: IPAddress) -> String? {
        let judged = address.embeddedIPv4 ?? address
        if allowedNetworks.contains(where: { $0.contains(address) || $0.contains(judged) }) { return nil }
        guard let (_, kind) = Self.nonPublic.first(where: { $0.0.contains(judged) }) else { return nil }
        return "\(address) is a \(kind) address, which callbacks may not reach (allow it with MEDIAQUEUE_CALLBACK_ALLOWED_NETWORKS)"
    }

    /// Whether `address` may be connected to.
    public func allows(_ address: IPAddress) -> Bool { refusal(for: address) == nil }

    /// Special-purpose ranges (IANA IPv4 and IPv6 special-purpose registries) that a callback
    /// must not reach, with a word for the error message.
    static let nonPublic: [(IPNetwork, String)] = [
        ("0.0.0.0/8", "reserved (this network)"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "CGNAT (shared)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved (IETF protocol)"),
        ("192.0.2.0/24", "reserved (documentation)"),
        ("192.88.99.0/24", "reserved (6to4 relay)"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved (benchmarking)"),
        ("198.51.100.0/24", "reserved (documentation)"),
        ("203.0.113.0/24", "reserved (documentation)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "reserved (unspecified)"),
        ("::1/128", "loopback"),
        ("::/96", "reserved (IPv4-compatible)"),
        ("64:ff9b:1::/48", "reserved (local NAT64)"),
        ("100::/64", "reserved (discard)"),
        ("2001::/23", "reserved (IETF protocol)"),
        ("2001:db8::/32", "reserved (documentation)"),
        ("2002::/16", "reserved (6to4)"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "reserved (site-local)"),
        ("ff00::/8", "multicast"),
    ].map { (IPNetwork($0.0)!, $0.1) }
}

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// 4 or 16 bytes in network order.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses `192.0.2.1`, `2001:db8::1`, `::ffff:10.0.0.1`, `[::1]` or `fe80::1%eth0`.
    public init?(_ text: String) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        if let zone = text.firstIndex(of: "%") { text = text[..<zone] }
        if let v4 = Self.parseIPv4(text) {
            bytes = v4
        } else if let v6 = Self.parseIPv6(text) {
            bytes = v6
        } else {
            return nil
        }
    }

    public var isIPv4: Bool { bytes.count == 4 }

    /// The IPv4 address inside an IPv4-mapped (`::ffff:0:0/96`) or NAT64 (`64:ff9b::/96`) address.
    public var embeddedIPv4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
        let nat64 = bytes[0..<12].elementsEqual([0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0])
        return mapped || nat64 ? IPAddress(bytes: Array(bytes[12..<16])) : nil
    }

    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        // The longest run of two or more zero groups becomes "::".
        var best = (start: -1, length: 0)
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > best.length && end - index > 1 { best = (index, end - index) }
            index = end
        }
        func hex(_ range: Range<Int>) -> String { groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
        guard best.start >= 0 else { return hex(0..<8) }
        return hex(0..<best.start) + "::" + hex((best.start + best.length)..<8)
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var result: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let value = UInt8(part) else { return nil }
            result.append(value)
        }
        return result
    }

    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard text.contains(":") else { return nil }
        let halves = text.splitAtDoubleColon()
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring, allowIPv4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            var bytes: [UInt8] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, allowIPv4Tail, piece.contains(".") {
                    guard let v4 = parseIPv4(piece) else { return nil }
                    bytes += v4
                } else {
                    guard !piece.isEmpty, piece.count <= 4, let value = UInt16(piece, radix: 16) else { return nil }
                    bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
                }
            }
            return bytes
        }
        if halves.count == 1 {
            guard let all = groups(halves[0], allowIPv4Tail: true), all.count == 16 else { return nil }
            return all
        }
        guard let head = groups(halves[0], allowIPv4Tail: false), let tail = groups(halves[1], allowIPv4Tail: true),
              head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}

extension Substring {
    /// Splits at each "::" (single colons stay inside the parts).
    fileprivate func splitAtDoubleColon() -> [Substring] {
        var parts: [Substring] = []
        var start = startIndex
        var index = startIndex
        while index < endIndex {
            let next = self.index(after: index)
            if self[index] == ":", next < endIndex, self[next] == ":" {
                parts.append(self[start..<index])
                start = self.index(after: next)
                index = start
            } else {
                index = next
            }
        }
        parts.append(self[start..<endIndex])
        return parts
    }
}

/// An address range in CIDR notation, such as `127.0.0.0/8` or `fc00::/7`.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// Parses `a.b.c.d/n`, `x:y::/n`, or a single address (a /32 or /128).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map { String($0).trimmingSpaces }
        guard let first = parts.first, let address = IPAddress(first) else { return nil }
        let maximum = address.bytes.count * 8
        let length = parts.count == 2 ? Int(parts[1]) : maximum
        guard let length, (0...maximum).contains(length) else { return nil }
        self.address = address
        self.prefixLength = length
    }

    /// Whether `candidate` lies in this network (an IPv4 address never lies in an IPv6 one).
    public func contains(_ candidate: IPAddress) -> Bool {
        guard candidate.bytes.count == address.bytes.count else { return false }
        var remaining = prefixLength
        for (mine, theirs) in zip(address.bytes, candidate.bytes) {
            guard remaining > 0 else { return true }
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if mine & mask != theirs & mask { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String { "\(address)/\(prefixLength)" }

    /// Parses a comma-separated list; returns nil and the offending entry if one is not a CIDR.
    public static func parseList(_ text: String) -> Result<[IPNetwork], InvalidNetwork> {
        var networks: [IPNetwork] = []
        for entry in text.split(separator: ",") {
            let trimmed = String(entry).trimmingSpaces
            if trimmed.isEmpty { continue }
            guard let network = IPNetwork(trimmed) else { return .failure(InvalidNetwork(text: trimmed)) }
            networks.append(network)
        }
        return .success(networks)
    }

    /// An entry of a network list that is not an address or CIDR.
    public struct InvalidNetwork: Error, CustomStringConvertible {
        public let text: String
        public var description: String { "'\(text)' is not an IP address or CIDR network" }
    }
}

extension String {
    var trimmingSpaces: String {
        var view = Substring(self)
        while view.first?.isWhitespace == true { view = view.dropFirst() }
        while view.last?.isWhitespace == true { view = view.dropLast() }
        return String(view)
    }
}
