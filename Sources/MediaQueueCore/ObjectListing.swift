import Foundation

/// What a client sees of one object: the answer to HEAD, and a row of ListObjects.
public struct ObjectInfo: Sendable, Hashable {
    public var key: String
    public var size: Int
    /// The content's MD5 in hex for objects written in one piece (what COS and S3 give), quoted
    /// as the `ETag` header carries it.
    public var etag: String
    public var lastModified: Timestamp

    public init(key: String, size: Int, etag: String, lastModified: Timestamp) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
    }
}

/// The parameters of ListObjects (`GET /?prefix=&delimiter=&marker=&max-keys=`).
public struct ObjectListQuery: Sendable, Hashable {
    public var prefix: String
    /// Keys with this after the prefix are rolled up into one common prefix; empty: none are.
    public var delimiter: String
    /// Only keys (and common prefixes) that sort after this one.
    public var marker: String
    public var maxKeys: Int

    public static let maxKeysLimit = 1000

    public init(prefix: String = "", delimiter: String = "", marker: String = "", maxKeys: Int = maxKeysLimit) {
        self.prefix = prefix
        self.delimiter = delimiter
        self.marker = marker
        self.maxKeys = maxKeys
    }
}

/// One page of ListObjects.
public struct ObjectListing: Sendable, Hashable {
    public var objects: [ObjectInfo]
    public var commonPrefixes: [String]
    public var isTruncated: Bool
    /// Where the next page starts (the last key or common prefix of this one) when truncated.
    public var nextMarker: String?

    public init(objects: [ObjectInfo] = [], commonPrefixes: [String] = [], isTruncated: Bool = false, nextMarker: String? = nil) {
        self.objects = objects
        self.commonPrefixes = commonPrefixes
        self.isTruncated = isTruncated
        self.nextMarker = nextMarker
    }

    /// The page `query` asks for from every key of a bucket, for storages that can only walk
    /// their keys: keys compared by their UTF-8 bytes (as S3 and COS order them), a common
    /// prefix counting as one entry. `info` is asked only for the keys on the page.
    public static func page(
        of keys: [String], _ query: ObjectListQuery, info: (String) throws(WorkFailure) -> ObjectInfo?
    ) throws(WorkFailure) -> ObjectListing {
        let sorted = keys.filter { $0.hasPrefix(query.prefix) }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var listing = ObjectListing()
        var entries = 0
        var last: String?
        for key in sorted where query.marker.isEmpty || query.marker.utf8.lexicographicallyPrecedes(key.utf8) {
            var rolledUp: String?
            if !query.delimiter.isEmpty, let range = key.dropFirst(query.prefix.count).range(of: query.delimiter) {
                rolledUp = String(key[..<range.upperBound])
            }
            if let common = rolledUp {
                if listing.commonPrefixes.last == common { continue }
                // A marker inside a rolled-up prefix means that prefix was on an earlier page.
                if !query.marker.isEmpty, query.marker.hasPrefix(common) { continue }
            }
            if entries == query.maxKeys {
                listing.isTruncated = true
                listing.nextMarker = last
                return listing
            }
            if let common = rolledUp {
                listing.commonPrefixes.append(common)
                last = common
            } else {
                guard let object = try info(key) else { continue }
                listing.objects.append(object)
                last = key
            }
            entries += 1
        }
        return listing
    }
}
