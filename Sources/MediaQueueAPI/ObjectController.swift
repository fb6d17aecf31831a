import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import MediaQueueCore
import MediaQueueXML
import NIOCore

/// COS's object calls on the bucket's COS host (`<bucket>.cos.<region>.myqcloud.com`): `PUT`,
/// `GET` (with `Range`), `HEAD` and `DELETE` of `/<key>`, and `GET /` as ListObjects, on whatever
/// storage the node uses. Runs after `CIMiddleware`, which named the bucket and checked the
/// signature; requests to other hosts go on to the CI routes.
struct ObjectController: RouterMiddleware {
    typealias Context = APIContext

    let storage: any ObjectStorage
    let maxObjectBytes: Int
    /// Publishes a complete upload (see `ObjectAPI.upload`); its failure fails the PUT (the
    /// client then uploads again).
    let upload: ObjectAPI.Upload

    @concurrent
    func handle(_ request: Request, context: APIContext, next: @concurrent (Request, APIContext) async throws -> Response) async throws -> Response {
        guard context.addressesObjects else { return try await next(request, context) }
        let path = request.uri.path.removingPercentEncoding ?? request.uri.path
        try Self.checkSupported(request, listing: path == "/")
        if path == "/" {
            guard request.method == .get else { throw CIError(APIError.methodNotAllowed, "\(request.method) / is not an object call") }
            return try await list(request, context)
        }
        let name = String(path.dropFirst())
        let key: ObjectKey
        do {
            key = try ObjectKey(name)
        } catch {
            throw CIError(.invalidArgument, "the object key \(error.reason)", element: "Key")
        }
        switch request.method {
        case .put: return try await put(request, context, key)
        case .get: return try await get(request, context, key, sendBody: true)
        case .head: return try await get(request, context, key, sendBody: false)
        case .delete:
            try await Self.work { () async throws(WorkFailure) in try await storage.remove(bucket: context.bucket, key: key) }
            return Response(status: .noContent)
        default: throw CIError(APIError.methodNotAllowed, "\(request.method) is not an object call")
        }
    }

    // MARK: Upload

    /// Written to a staging file first and published whole, so no reader sees part of it.
    func put(_ request: Request, _ context: APIContext, _ key: ObjectKey) async throws -> Response {
        // Checked before the body is read: they go with the object's workflow runs and callbacks.
        let headers = CosHeader.passedOn(from: request.headers.map { (name: $0.name.rawName, value: $0.value) })
        let metadataBytes = CosHeader.metadataBytes(headers)
        guard metadataBytes <= CosHeader.maxMetadataBytes else {
            throw CIError(Self.metadataTooLarge, "the x-cos-meta-* headers hold \(metadataBytes) bytes; at most \(CosHeader.maxMetadataBytes)", element: "x-cos-meta-*")
        }
        try storage.checkUpload(of: key, bucket: context.bucket)
        let expectedMD5 = try ContentMD5.expected(in: request.headers)
        let staging = try await Self.work { () throws(WorkFailure) in
            try storage.makeStagingFolder(bucket: context.bucket, name: "upload-" + context.requestID, for: key)
        }
        defer { storage.removeStagingFolder(staging) }
        let file = staging + "/" + key.fileName
        let handle = try await BlockingFileWork.run { () throws -> FileHandle in
            guard FileManager.default.createFile(atPath: file, contents: nil), let handle = FileHandle(forWritingAtPath: file) else {
                throw CIError(.internalError, "cannot create the upload's staging file")
            }
            return handle
        }
        var md5 = Insecure.MD5()
        var crc = CRC64()
        var size = 0
        do {
            defer { try? handle.close() }
            var pending = ByteBuffer()
            for try await buffer in request.body {
                size += buffer.readableBytes
                guard size <= maxObjectBytes else {
                    throw CIError(APIError.entityTooLarge, "the object is larger than \(maxObjectBytes) bytes")
                }
                buffer.withUnsafeReadableBytes { bytes in
                    md5.update(bufferPointer: bytes)
                    crc.update(bytes)
                }
                pending.writeImmutableBuffer(buffer)
                if pending.readableBytes >= BlockingFileWork.chunkBytes {
                    try await Self.write(pending, to: handle)
                    pending.clear()
                }
            }
            if pending.readableBytes > 0 { try await Self.write(pending, to: handle) }
        }
        let digest = Data(md5.finalize())
        if let expectedMD5 { try ContentMD5.check(digest, expected: expectedMD5) }
        var storedETag: String?
        try await upload(context.bucket, key, headers) {
            storedETag = try await Self.work { () async throws(WorkFailure) in try await storage.publish(file, bucket: context.bucket, as: key) }
        }
        // The object's ETag as a HEAD or GET will give it (S3's for a multipart upload is not the MD5).
        return Response(status: .ok, headers: [.eTag: storedETag ?? "\"\(Self.hex(digest))\"", .cosCRC64: String(crc.checksum)])
    }

    private static func write(_ bytes: ByteBuffer, to handle: FileHandle) async throws {
        try await BlockingFileWork.run { try handle.write(contentsOf: bytes.readableBytesView) }
    }

    // MARK: Download

    func get(_ request: Request, _ context: APIContext, _ key: ObjectKey, sendBody: Bool) async throws -> Response {
        // The headers and the bytes must be of one version: a download that found another one
        // (the object replaced after its info was read) starts again.
        for _ in 1..<Self.downloadTries {
            if let response = try await get(request, context, key, sendBody: sendBody, lastTry: false) { return response }
        }
        return try await get(request, context, key, sendBody: sendBody, lastTry: true)!
    }

    /// One try of `get`: nil when the bytes downloaded were of another version than the info,
    /// unless it is the last try, which then fails.
    private func get(_ request: Request, _ context: APIContext, _ key: ObjectKey, sendBody: Bool, lastTry: Bool) async throws -> Response? {
        guard let object = try await Self.work({ () async throws(WorkFailure) in try await storage.openObject(bucket: context.bucket, key: key) }) else {
            throw CIError(Self.noSuchKey, "the object \(key.rawValue) does not exist", element: "Key")
        }
        let info = object.info
        var headers: HTTPFields = [
            .eTag: info.etag, .lastModified: HTTPDate.format(info.lastModified), .acceptRanges: "bytes",
            .contentType: Self.contentType(of: key),
        ]
        if let crc = info.crc64 { headers[.cosCRC64] = String(crc) }
        if try Self.notModified(request, info) { return Response(status: .notModified, headers: headers, body: ResponseBody()) }
        var status = HTTPResponse.Status.ok
        var range = 0..<info.size
        if let text = request.headers[.range] {
            guard let asked = ByteRange.parse(text, size: info.size) else {
                let refusal = CIError(Self.invalidRange, "the range \(text) is not within the object's \(info.size) bytes", element: "Range")
                var answer = refusal.response(requestID: context.requestID, resource: request.uri.path)
                answer.headers[.contentRange] = "bytes */\(info.size)"
                return answer
            }
            range = asked
            status = .partialContent
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(info.size)"
        }
        headers[.contentLength] = String(range.count)
        guard sendBody, !range.isEmpty else { return Response(status: status, headers: headers, body: ResponseBody()) }
        let file: ReadableFile
        if let opened = object.file {
            file = opened
        } else {
            // Only the range: a storage that downloads (S3) fetches just that.
            let wanted = range
            guard let downloaded = try await Self.work({ () async throws(WorkFailure) in
                try await storage.readableFile(bucket: context.bucket, key: key, range: wanted)
            }) else {
                throw CIError(Self.noSuchKey, "the object \(key.rawValue) does not exist", element: "Key")
            }
            file = downloaded
        }
        if let version = file.etag, version != info.etag {
            FileResponse.release(file, storage: storage)
            guard lastTry else { return nil }
            throw CIError(APIError.serviceUnavailable, "the object \(key.rawValue) was replaced each time it was read; try again")
        }
        let body = FileResponse.body(file, bytes: range, storage: storage)
        return Response(status: status, headers: headers, body: body)
    }

    // MARK: Listing

    func list(_ request: Request, _ context: APIContext) async throws -> Response {
        let parameters = request.queryParameters
        // Tencent's Python SDK asks for url encoding and decodes every key it lists: sent as they
        // are, keys with a `%` came back as other keys.
        let urlEncoded: Bool
        switch parameters.nonEmpty("encoding-type") {
        case nil: urlEncoded = false
        case let type? where type.lowercased() == "url": urlEncoded = true
        case let type?: throw CIError(.invalidArgument, "encoding-type must be url, not '\(type)'", element: "encoding-type")
        }
        func shown(_ text: String) -> String { urlEncoded ? URIEncoding.encode(text, keepSlash: true) : text }
        var query = ObjectListQuery()
        query.prefix = parameters.nonEmpty("prefix") ?? ""
        query.delimiter = parameters.nonEmpty("delimiter") ?? ""
        query.marker = parameters.nonEmpty("marker") ?? ""
        query.maxKeys = try parameters.int("max-keys", default: ObjectListQuery.maxKeysLimit, range: 0...ObjectListQuery.maxKeysLimit)
        try ObjectListQuery.checkPrefix(query.prefix)
        let listing = try await Self.work { () async throws(WorkFailure) in try await storage.listObjects(bucket: context.bucket, query) }
        var children = [
            XMLTree("Name", text: context.bucket), XMLTree("Prefix", text: shown(query.prefix)), XMLTree("Marker", text: shown(query.marker)),
            XMLTree("MaxKeys", text: String(query.maxKeys)), XMLTree("Delimiter", text: shown(query.delimiter)),
            XMLTree("IsTruncated", text: listing.isTruncated ? "true" : "false"),
        ]
        if urlEncoded { children.append(XMLTree("EncodingType", text: "url")) }
        if let next = listing.nextMarker { children.append(XMLTree("NextMarker", text: shown(next))) }
        children += listing.objects.map { object in
            XMLTree("Contents", children: [
                XMLTree("Key", text: shown(object.key)), XMLTree("LastModified", text: HTTPDate.formatISO(object.lastModified)),
                XMLTree("ETag", text: object.etag), XMLTree("Size", text: String(object.size)),
                XMLTree("StorageClass", text: "STANDARD"),
            ])
        }
        children += listing.commonPrefixes.map { XMLTree("CommonPrefixes", children: [XMLTree("Prefix", text: shown($0))]) }
        let body = XMLTree("ListBucketResult", children: children).xmlBytes(declaration: true)
        return Response(status: .ok, headers: [.contentType: "application/xml"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    // MARK: Helpers

    /// The conditional headers of a GET or HEAD against the object as it is: true for a `304`
    /// (`If-None-Match` names its ETag, or it was not modified since `If-Modified-Since`);
    /// `PreconditionFailed` (412) when `If-Match` names other ETags or it was modified since
    /// `If-Unmodified-Since`. Times compare in whole seconds, as HTTP dates carry them.
    static func notModified(_ request: Request, _ info: ObjectInfo) throws(CIError) -> Bool {
        // If-Match compares strongly (a weak tag never matches), If-None-Match weakly.
        func names(_ list: String, weak: Bool) -> Bool {
            list.split(separator: ",").contains { listed in
                var tag = listed.trimmingCharacters(in: .whitespaces)
                if tag == "*" { return true }
                if tag.hasPrefix("W/") {
                    guard weak else { return false }
                    tag.removeFirst(2)
                }
                return tag == info.etag
            }
        }
        let modified = info.lastModified.seconds
        if let list = request.headers[.ifMatch], !names(list, weak: false) {
            throw CIError(APIError.preconditionFailed, "If-Match: the object's ETag is \(info.etag)", element: "If-Match")
        }
        if request.headers[.ifMatch] == nil, let text = request.headers[.ifUnmodifiedSince], let since = HTTPDate.parse(text), modified > since.seconds {
            throw CIError(APIError.preconditionFailed, "If-Unmodified-Since: the object was modified since", element: "If-Unmodified-Since")
        }
        if let list = request.headers[.ifNoneMatch] { return names(list, weak: true) }
        if let text = request.headers[.ifModifiedSince], let since = HTTPDate.parse(text) { return modified <= since.seconds }
        return false
    }

    /// Refuses COS's sub-resources (`?acl`, `?tagging`, `?uploads`, `?versionId`, …) and server-
    /// side copies (`x-cos-copy-source`): other calls on the same paths, which taken for plain
    /// object calls did harm (a `PUT ?acl` emptied the object, a `DELETE ?tagging` removed it, a
    /// copy wrote an empty one). A write passes only the signature's fields and a session token;
    /// a read also any parameter that is not a sub-resource (a player's cache-buster, a presigned
    /// URL's `x-cos-traffic-limit`, `response-*` overrides, which are not applied), as COS and S3
    /// serve them.
    static func checkSupported(_ request: Request, listing: Bool) throws(CIError) {
        let reading = request.method == .get || request.method == .head
        for (name, _) in request.queryParameters {
            if name.hasPrefix("q-") || name == "x-cos-security-token" { continue }
            if listing, listParameters.contains(name) { continue }
            if reading, !subResources.contains(name) { continue }
            throw CIError(APIError.notImplemented, "?\(name) is not a call this service answers", element: name)
        }
        if request.headers.contains(where: { $0.name.canonicalName.hasPrefix("x-cos-copy-source") }) {
            throw CIError(APIError.notImplemented, "copying on the server (x-cos-copy-source) is not a call this service answers; upload the object", element: "x-cos-copy-source")
        }
    }

    /// COS's query names that make a request on an object or bucket path another call.
    static let subResources: Set<String> = [
        "acl", "tagging", "uploads", "uploadId", "partNumber", "versionId", "versions", "delete", "restore", "append", "position",
        "select", "select-type", "symlink", "torrent", "cors", "policy", "lifecycle", "website", "referer", "domain", "logging",
        "inventory", "replication", "encryption", "object-lock", "retention", "legal-hold", "notification", "accelerate",
        "intelligenttiering", "origin", "ci-process", "list-type",
    ]

    static let listParameters: Set<String> = ["prefix", "delimiter", "marker", "max-keys", "encoding-type"]

    /// A storage failure as the client sees it: access refused stays a refusal; anything else is
    /// the service's trouble.
    private static func work<T>(_ body: () async throws(WorkFailure) -> T) async throws(CIError) -> T {
        do {
            return try await body()
        } catch {
            let code: CIError.Code = error.code == "StorageAccessDenied" ? .accessDenied : .internalError
            throw CIError(code, error.message)
        }
    }

    static func hex(_ bytes: Data) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func contentType(of key: ObjectKey) -> String {
        let name = key.fileName.lowercased()
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        return contentTypes[String(name[name.index(after: dot)...])] ?? "application/octet-stream"
    }

    static let contentTypes = [
        "mp4": "video/mp4", "mov": "video/quicktime", "mkv": "video/x-matroska", "webm": "video/webm", "flv": "video/x-flv",
        "ts": "video/mp2t", "m3u8": "application/vnd.apple.mpegurl", "mp3": "audio/mpeg", "aac": "audio/aac", "wav": "audio/wav",
        "m4a": "audio/mp4", "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
        "json": "application/json", "xml": "application/xml", "txt": "text/plain",
    ]

    static let noSuchKey = APIError.noSuchKey
    /// Reads of an object being replaced again and again, before its download fails.
    static let downloadTries = 3
    static let metadataTooLarge = CIError.Code("MetadataTooLarge")
    static let invalidRange = APIError.invalidRange
}

extension HTTPField.Name {
    static let contentMD5 = HTTPField.Name("Content-MD5")!
    /// The object's CRC-64 (`CRC64`) in decimal, which Tencent's SDKs compare with their own.
    static let cosCRC64 = HTTPField.Name("x-cos-hash-crc64ecma")!
}
