import Foundation
import MediaQueueTestSupport
import Testing
@testable import MediaQueueWorkers

@Suite("MD5")
struct MD5Tests {
    /// The test suite of RFC 1321, appendix A.5.
    @Test("matches RFC 1321's vectors", arguments: [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
        (String(repeating: "1234567890", count: 8), "57edf4a22be3c955ac49da2e2107b67a"),
    ])
    func vectors(input: String, digest: String) {
        #expect(MD5.hexDigest(of: Array(input.utf8)) == digest)
    }

    @Test("hashes a file of several read chunks like md5sum does")
    func file() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let path = bucket.path("random.bin")
        try SampleMedia.makeCorruptFile(at: path, count: 600 * 1024 + 13)
        let expected = try await runCommand("/usr/bin/md5sum", [path]).stdout.prefix(32)
        #expect(try MD5.hexDigest(ofFile: path) == String(expected))
    }
}
