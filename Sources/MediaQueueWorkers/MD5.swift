import Foundation

/// MD5 (RFC 1321), for the `Md5Info` of output files.
///
/// MD5 is what CI reports; it is not used for anything security-related here. A small own
/// implementation keeps the package free of a crypto dependency for one checksum.
struct MD5 {
    private var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476)
    private var buffer: [UInt8] = []
    private var length: UInt64 = 0

    init() {
        buffer.reserveCapacity(64)
    }

    mutating func update(_ bytes: some Sequence<UInt8>) {
        let bytes = Array(bytes)
        length &+= UInt64(bytes.count)
        var offset = 0
        // Top up a partial block first, then hash whole blocks straight from the input.
        if !buffer.isEmpty {
            let take = min(64 - buffer.count, bytes.count)
            buffer.append(contentsOf: bytes[..<take])
            offset = take
            if buffer.count == 64 {
                // A copy: `compress` mutates `self`, which must not overlap a read of `buffer`.
                let block = buffer
                block.withUnsafeBytes { compress($0) }
                buffer.removeAll(keepingCapacity: true)
            }
        }
        bytes.withUnsafeBytes { raw in
            while raw.count - offset >= 64 {
                compress(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + 64]))
                offset += 64
            }
        }
        buffer.append(contentsOf: bytes[offset...])
    }

    /// The digest as 32 lowercase hex digits; the hasher is spent afterwards.
    mutating func finalize() -> String {
        let bitLength = length &* 8
        var padding: [UInt8] = [0x80]
        padding += [UInt8](repeating: 0, count: (55 - buffer.count + 64) % 64)
        for shift in stride(from: 0, to: 64, by: 8) {
            padding.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        update(padding)
        var hex = ""
        for word in [state.0, state.1, state.2, state.3] {
            for shift in stride(from: 0, to: 32, by: 8) {
                let byte = UInt8(truncatingIfNeeded: word >> UInt32(shift))
                hex += String(byte >> 4, radix: 16) + String(byte & 0x0F, radix: 16)
            }
        }
        return hex
    }

    /// The digest of a whole file, read in chunks so large files need little memory.
    static func hexDigest(ofFile path: String) throws -> String {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var md5 = MD5()
        while let chunk = try handle.read(upToCount: 256 * 1024), !chunk.isEmpty {
            md5.update(chunk)
        }
        return md5.finalize()
    }

    private static let shifts: [UInt32] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
        5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
        4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
        6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ]

    /// floor(abs(sin(i + 1)) * 2^32), as RFC 1321 tabulates.
    private static let constants: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4_294_967_296)) }

    private mutating func compress(_ block: UnsafeRawBufferPointer) {
        func word(_ index: Int) -> UInt32 {
            UInt32(littleEndian: block.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
        }
        var (a, b, c, d) = state
        for round in 0..<64 {
            var f: UInt32
            let g: Int
            switch round {
            case 0..<16:
                f = (b & c) | (~b & d)
                g = round
            case 16..<32:
                f = (d & b) | (~d & c)
                g = (5 * round + 1) % 16
            case 32..<48:
                f = b ^ c ^ d
                g = (3 * round + 5) % 16
            default:
                f = c ^ (b | ~d)
                g = (7 * round) % 16
            }
            f = f &+ a &+ Self.constants[round] &+ word(g)
            a = d
            d = c
            c = b
            b = b &+ ((f << Self.shifts[round]) | (f >> (32 - Self.shifts[round])))
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}
