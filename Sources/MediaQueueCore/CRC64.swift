/// CRC-64 as COS computes it for `x-cos-hash-crc64ecma` (ECMA-182's polynomial, reflected, with
/// all bits set before and after; "CRC-64/XZ"), which Tencent's SDKs check after an upload and a
/// download.
public struct CRC64: Sendable {
    /// The checksum of what was added so far.
    public var checksum: UInt64 { ~register }
    private var register: UInt64 = ~0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var crc = register
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int(UInt8(truncatingIfNeeded: crc) ^ byte)] ^ (crc >> 8) }
        }
        register = crc
    }

    public static func checksum(of bytes: some Sequence<UInt8>) -> UInt64 {
        var crc = CRC64()
        let array = Array(bytes)
        array.withUnsafeBytes { crc.update($0) }
        return crc.checksum
    }

    private static let table: [UInt64] = (0..<256).map { index in
        var value = UInt64(index)
        for _ in 0..<8 { value = value & 1 == 1 ? (value >> 1) ^ 0xC96C_5795_D787_0F42 : value >> 1 }
        return value
    }
}
