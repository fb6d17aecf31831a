import MediaQueueCore
@testable import MediaQueueWorkers
import Testing

/// How the S3 storage names an object: path-style or virtual-host style, the store's bucket for
/// a CI bucket, and S3's URI encoding of keys.
@Suite struct S3AddressingTests {
    static func storage(pathStyle: Bool, endpoint: String = "https://cos.ap-guangzhou.myqcloud.com") -> S3ObjectStorage {
        S3ObjectStorage(configuration: S3Configuration(
            endpoint: endpoint, region: "ap-guangzhou", accessKeyID: "AKID", secretAccessKey: "secret", pathStyle: pathStyle,
            buckets: ["media-1250000000": "store-media"], scratchDirectory: "/tmp/s3"
        ))
    }

    @Test func pathStyleAndVirtualHostStyleURLs() throws {
        let key = try ObjectKey("in/a b+c/视频.mp4")
        #expect(Self.storage(pathStyle: true, endpoint: "http://127.0.0.1:9000/").url("media-1250000000", key)
            == "http://127.0.0.1:9000/store-media/in/a%20b%2Bc/%E8%A7%86%E9%A2%91.mp4")
        #expect(Self.storage(pathStyle: false).url("other-1250000000", key)
            == "https://other-1250000000.cos.ap-guangzhou.myqcloud.com/in/a%20b%2Bc/%E8%A7%86%E9%A2%91.mp4")
    }

    @Test func uriEncodingKeepsOnlyUnreservedCharacters() {
        #expect(S3ObjectStorage.encode("A-z_0.9~/x y", keepSlash: true) == "A-z_0.9~/x%20y")
        #expect(S3ObjectStorage.encode("a/b=c", keepSlash: false) == "a%2Fb%3Dc")
    }
}
