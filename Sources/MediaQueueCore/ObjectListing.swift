import Foundation

/// What a client sees of one object: the answer to HEAD, and a row of ListObjects.
public struct ObjectInfo: Sendable, Hashable {
    public var key: String
    public var size: Int
    /// The content's MD5 in hex for objects written in one piece (what COS and S3 give), quoted
    /// as the `ETag` header carries it.
    public var etag: String
    public var lastModified: Timestamp
    /// The content's `CRC64`, when the storage knows it (COS's `x-cos-hash-crc64ecma`).
    public var crc64: UInt64?

    public init(key: String, size: Int, etag: String, lastModified: Timestamp, crc64: UInt64? = nil) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
        self.crc64 = crc64
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

    /// Refuses a prefix whose folder no key could be in (`..`, a reserved name): the API's list
    /// and the CLI's `ls` answer it with an error rather than an empty listing.
    public static func checkPrefix(_ prefix: String) throws(CIError) {
        if let folder = ObjectKey.folder(of: prefix), let problem = ObjectKey.problem(folder) {
            throw CIError(.invalidArgument, "prefix: its folder \(problem)", element: "prefix")
        }
    }

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
    /// their keys: keys compared by their UTF-8 bytes (as S3 and COS order and match them; Swift's
    /// own String comparison would take `é` and `e` + U+0301 for one key, and a `/` followed by a
    /// combining mark for no `/`), a common prefix counting as one entry. `info` is asked only for
    /// the keys on the page.
    public static func page(
        of keys: [String], _ query: ObjectListQuery, info: (String) throws(WorkFailure) -> ObjectInfo?
    ) throws(WorkFailure) -> ObjectListing {
        let prefix = Array(query.prefix.utf8)
        let sorted = keys.map { Array($0.utf8) }.filter { $0.starts(with: prefix) }.sorted { $0.lexicographicallyPrecedes($1) }
        return try page(ofSorted: sorted, query, info: info)
    }

    /// `page(of:)` for keys that come already in the order of their bytes, each starting with the
    /// prefix: read only until the page is full, so a storage that walks its keys in that order
    /// walks no further than the page.
    public static func page(
        ofSorted sorted: some Sequence<[UInt8]>, _ query: ObjectListQuery, info: (String) throws(WorkFailure) -> ObjectInfo?
    ) throws(WorkFailure) -> ObjectListing {
        let prefix = Array(query.prefix.utf8), delimiter = Array(query.delimiter.utf8), marker = Array(query.marker.utf8)
        var listing = ObjectListing()
        var lastCommonPrefix: [UInt8]?
        var entries = 0
        var last: String?
        for key in sorted where marker.isEmpty || marker.lexicographicallyPrecedes(key) {
            let rolledUp = delimiter.isEmpty ? nil : end(of: delimiter, in: key, from: prefix.count).map { Array(key[..<$0]) }
            if let common = rolledUp {
                if lastCommonPrefix == common { continue }
                // A marker inside a rolled-up prefix means that prefix was on an earlier page.
                if !marker.isEmpty, marker.starts(with: common) { continue }
            }
            if entries == query.maxKeys {
                listing.isTruncated = true
                listing.nextMarker = last
                return listing
            }
            if let common = rolledUp {
                let text = String(decoding: common, as: UTF8.self)
                listing.commonPrefixes.append(text)
                lastCommonPrefix = common
                last = text
            } else {
                let text = String(decoding: key, as: UTF8.self)
                guard let object = try info(text) else { continue }
                listing.objects.append(object)
                last = text
            }
            entries += 1
        }
        return listing
    }

    /// Where the first `delimiter` in `key` at or after `start` ends.
    private static func end(of delimiter: [UInt8], in key: [UInt8], from start: Int) -> Int? {
        guard key.count >= delimiter.count, start <= key.count - delimiter.count else { return nil }
        for index in start...(key.count - delimiter.count) where key[index..<(index + delimiter.count)].elementsEqual(delimiter) {
            return index + delimiter.count
        }
        return nil
    }
}
