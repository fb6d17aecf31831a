import MediaQueueCore
import Testing

/// COS's `x-cos-hash-crc64ecma`: CRC-64/XZ, the value Tencent's SDKs compute (Go's `crc64.ECMA`
/// table, Python's crcmod with the reflected ECMA-182 polynomial).
@Suite struct CRC64Tests {
    @Test func theStandardCheckValueAndPiecesAddUp() {
        #expect(CRC64.checksum(of: Array("123456789".utf8)) == 0x995D_C9BB_DF19_39FA)
        #expect(CRC64.checksum(of: []) == 0)
        var pieces = CRC64()
        for part in ["1234", "", "56789"] { Array(part.utf8).withUnsafeBytes { pieces.update($0) } }
        #expect(pieces.checksum == 0x995D_C9BB_DF19_39FA, "fed in pieces, as a streamed upload is")
    }
}
