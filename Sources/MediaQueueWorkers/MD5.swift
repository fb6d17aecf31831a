import Crypto
import Foundation

/// MD5 digests for the `Md5Info` of output files: what CI reports, not used for anything
/// security-related here (hence swift-crypto's `Insecure.MD5`).
enum MD5 {
    /// The lowercase hex digest of `bytes`.
    static func hexDigest(of bytes: some DataProtocol) -> String {
        hex(Insecure.MD5.hash(data: bytes))
    }

    /// The digest of a whole file.
    static func hexDigest(ofFile path: String) throws -> String {
        var md5 = Insecure.MD5()
        try forEachChunk(ofFile: path) { md5.update(data: $0) }
        return hex(md5.finalize())
    }

    /// Reads a whole file in chunks, so that large files need little memory.
    static func forEachChunk(ofFile path: String, _ body: (Data) -> Void) throws {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try readToEnd(handle, body)
    }

    /// Reads an open file from its start to its end in chunks.
    static func forEachChunk(of handle: FileHandle, _ body: (Data) -> Void) throws {
        try handle.seek(toOffset: 0)
        try readToEnd(handle, body)
    }

    private static func readToEnd(_ handle: FileHandle, _ body: (Data) -> Void) throws {
        while let chunk = try handle.read(upToCount: 256 * 1024), !chunk.isEmpty {
            body(chunk)
        }
    }

    static func hex(_ digest: Insecure.MD5Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(32)
        for byte in digest {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
