import Crypto
import Foundation
public import MediaQueueCore
import MediaQueueHTTPClient
import MediaQueueXML

/// Where an S3-compatible store is and how to sign for it (Tencent COS, AWS S3, MinIO, Ceph RGW).
public struct S3Configuration: Sendable, Hashable {
    /// `http(s)://host[:port]`, without a bucket.
    public var endpoint: String
    public var region: String
    public var accessKeyID: String
    public var secretAccessKey: String
    /// `endpoint/bucket/key` (MinIO, Ceph, most self-hosted stores) rather than
    /// `bucket.host/key` (AWS, COS).
    public var pathStyle: Bool
    /// The store's bucket for each CI bucket; a CI bucket not listed uses its own name.
    public var buckets: [String: String]
    /// Outputs larger than this are uploaded in parts (multipart upload).
    public var multipartThreshold: Int
    /// The size of each part but the last (S3 requires 5 MiB at least).
    public var partSize: Int
    /// Inputs are downloaded in ranges of this many bytes.
    public var rangeSize: Int
    /// Local folder for downloaded inputs and outputs being written.
    public var scratchDirectory: String
    /// PEM file of the CAs the store's certificate must chain to; nil for the system's.
    public var caFile: String?
    /// How long to wait before each retry of a request the store answered with 500, 502, 503 or
    /// 504, or that could not connect or lost its connection: S3 asks clients to retry these, and
    /// its SDKs retry three times.
    public var retryDelays: [Duration]
    /// How long a DELETE may take: the abort of a failed or cancelled multipart upload, or the
    /// removal of an object (a failed or cancelled job's outputs). The job waits for its
    /// clean-up before it ends (or goes back to its queue at shutdown); parts an abort leaves
    /// behind are what a bucket's lifecycle rule for incomplete uploads removes.
    public var deleteTimeout: Duration
    /// A request that moves nothing for this long (a stalled connection) fails, and is retried
    /// as a dropped connection is; only the hour a whole request may take ended it before.
    public var stallTimeout: Duration

    public init(
        endpoint: String, region: String, accessKeyID: String, secretAccessKey: String, pathStyle: Bool = true,
        buckets: [String: String] = [:], multipartThreshold: Int = 64 << 20, partSize: Int = 16 << 20, rangeSize: Int = 64 << 20,
        scratchDirectory: String, caFile: String? = nil,
        retryDelays: [Duration] = [.milliseconds(100), .milliseconds(400), .seconds(2)], deleteTimeout: Duration = .seconds(30),
        stallTimeout: Duration = .seconds(60)
    ) {
        self.deleteTimeout = deleteTimeout
        self.stallTimeout = stallTimeout
        self.endpoint = endpoint
        self.region = region
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.pathStyle = pathStyle
        self.buckets = buckets
        self.multipartThreshold = multipartThreshold
        self.partSize = partSize
        self.rangeSize = rangeSize
        self.scratchDirectory = scratchDirectory
        self.caFile = caFile
        self.retryDelays = retryDelays
    }
}

/// Buckets in an S3-compatible store, over libcurl with its built-in AWS Signature V4.
///
/// Inputs are downloaded (in `rangeSize` ranges) into a scratch folder that the reader removes;
/// outputs are written in a scratch staging folder and uploaded on `publish`, in one PUT or, above
/// `multipartThreshold`, as a multipart upload (aborted if a part fails). A PUT replaces an
/// object atomically, as S3 does. Each request but the multipart POSTs, and each range, is
/// retried after the store's transient answers (`retryDelays`).
public struct S3ObjectStorage: ObjectStorage {
    public let configuration: S3Configuration
    let client: HTTPClient

    public init(configuration: S3Configuration) {
        self.configuration = configuration
        // The store is an address the operator chose, private networks included.
        let everywhere = ["0.0.0.0/0", "::/0"].compactMap(IPNetwork.init)
        client = HTTPClient(configuration: HTTPClientConfiguration(
            timeout: .seconds(3600), addressPolicy: AddressPolicy(allowedNetworks: everywhere),
            maxResponseBodyBytes: Self.maxListingBytes, caFile: configuration.caFile, stallTimeout: configuration.stallTimeout
        ))
    }

    /// Room for the largest body the store answers in memory: a listing page of 1,000 keys of
    /// up to 1,024 bytes each, escaped (objects' bodies go to files, not here).
    static let maxListingBytes = 8 << 20

    // MARK: ObjectStorage

    public func readableFile(bucket: String, key: ObjectKey) async throws(WorkFailure) -> ReadableFile? {
        try await download(bucket: bucket, key: key, range: nil)
    }

    public func readableFile(bucket: String, key: ObjectKey, range: Range<Int>) async throws(WorkFailure) -> ReadableFile? {
        try await download(bucket: bucket, key: key, range: range)
    }

    /// Downloads the object, or only the bytes of `range` in it, into a scratch folder, range by
    /// range of `rangeSize`, all of one version: one replaced meanwhile is downloaded again.
    private func download(bucket: String, key: ObjectKey, range wanted: Range<Int>?) async throws(WorkFailure) -> ReadableFile? {
        for _ in 1..<Self.downloadTries {
            switch try await downloadOnce(bucket: bucket, key: key, range: wanted) {
            case .missing: return nil
            case .file(let file): return file
            case .replaced: continue
            }
        }
        guard case .file(let file) = try await downloadOnce(bucket: bucket, key: key, range: wanted) else { return nil }
        return file
    }

    /// The downloaded copy's file name: the key's, unless the file system cannot hold it (a
    /// key's segment may have 850 bytes and more, a file name 255), then `input` and its
    /// extension, which helps ffmpeg guess raw formats.
    static func downloadName(_ key: ObjectKey) -> String {
        key.fileName.utf8.count <= 200 ? key.fileName : "input" + JobInput.fileExtension(ofURL: key.fileName)
    }

    /// Downloads of an object being replaced again and again, before the last is let fail.
    static let downloadTries = 3

    private enum Download {
        case missing
        case file(ReadableFile)
        /// Another version answered a later range (`If-Match` on the first one's ETag).
        case replaced
    }

    private func downloadOnce(bucket: String, key: ObjectKey, range wanted: Range<Int>?) async throws(WorkFailure) -> Download {
        // The first byte rather than a HEAD: a refusal then comes with S3's error body, whose
        // code (SignatureDoesNotMatch, AccessDenied…) the job's message names.
        let probe = try await perform(
            HTTPRequest(method: .get, url: url(bucket, key), headers: [HTTPHeader("Range", "bytes=0-0")], body: []), reading: key
        )
        let size: Int
        switch probe.status {
        case 404: return .missing
        case 206: size = Int(probe.header("Content-Range")?.split(separator: "/").last ?? "") ?? 0
        case 200: size = Int(probe.header("Content-Length") ?? "") ?? 0
        case 416: size = 0  // an empty object has no first byte
        default: throw failure(probe, reading: key)
        }
        let folder = configuration.scratchDirectory + "/" + bucket + "/" + ObjectKey.reservedPrefix + "download-" + UUID().uuidString
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw WorkFailure(code: "InternalError", message: "cannot create a folder for the input download")
        }
        let path = folder + "/" + Self.downloadName(key)
        let etag = probe.header("ETag")
        let first = min(wanted?.lowerBound ?? 0, size)
        let last = min(wanted?.upperBound ?? size, size)
        if first >= last, size > 0 {
            // A range past an object that shrank meanwhile: nothing of it to fetch.
            FileManager.default.createFile(atPath: path, contents: nil)
            return .file(ReadableFile(path: path, temporaryFolder: folder, firstByte: first, etag: etag))
        }
        var replaced = false
        do throws(WorkFailure) {
            var offset = first
            repeat {
                let end = min(last, offset + configuration.rangeSize) - 1
                var get = HTTPRequest(method: .get, url: url(bucket, key), headers: headers, body: [], signature: signature)
                if size > 0 { get.headers.append(HTTPHeader("Range", "bytes=\(offset)-\(end)")) }
                if let etag { get.headers.append(HTTPHeader("If-Match", etag)) }
                let download: HTTPDownload
                do {
                    download = try await retrying(
                        { try await client.download(get, toFile: path, at: offset - first, maxBytes: configuration.rangeSize) }, status: \.response.status
                    )
                } catch {
                    throw Self.unreachable(error, reading: key)
                }
                if download.response.status == 412 {
                    replaced = true
                    break
                }
                guard download.succeeded else { throw failure(download.response, reading: key) }
                offset += download.bytesWritten
                guard download.bytesWritten > 0 || size == 0 else {
                    throw WorkFailure(code: WorkFailure.storageUnavailable, message: "the object storage sent nothing for '\(key.rawValue)' at byte \(offset)")
                }
            } while offset < last
        } catch {
            removeStagingFolder(folder)
            throw error
        }
        if replaced {
            removeStagingFolder(folder)
            return .replaced
        }
        return .file(ReadableFile(path: path, temporaryFolder: folder, firstByte: first, etag: etag))
    }

    public func makeStagingFolder(bucket: String, name: String, for key: ObjectKey?) throws(WorkFailure) -> String {
        let folder = configuration.scratchDirectory + "/" + bucket + "/" + ObjectKey.reservedPrefix + name
        try? FileManager.default.removeItem(atPath: folder)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw WorkFailure.outputWriteFailed(key?.rawValue ?? "the input download", "cannot create a scratch folder")
        }
        return folder
    }

    @discardableResult
    public func publish(_ path: String, bucket: String, as key: ObjectKey) async throws(WorkFailure) -> String? {
        defer { try? FileManager.default.removeItem(atPath: path) }
        guard let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) else {
            throw WorkFailure.outputWriteFailed(key.rawValue, "the file to upload is gone")
        }
        if size <= configuration.multipartThreshold {
            var put = HTTPRequest(method: .put, url: url(bucket, key), headers: headers, body: [], signature: signature)
            put.upload = FileRegion(path: path, offset: 0, length: size)
            let response = try await perform(put, writing: key)
            guard (200..<300).contains(response.status) else { throw failure(response, writing: key) }
        } else {
            try await multipartUpload(path, size: size, bucket: bucket, key: key)
        }
        // What the store now holds must be the whole file.
        let head = try await perform(HTTPRequest(method: .head, url: url(bucket, key), headers: headers, body: [], signature: signature), writing: key)
        guard (200..<300).contains(head.status), Int(head.header("Content-Length") ?? "") == size else {
            throw WorkFailure.outputWriteFailed(
                key.rawValue, "the object storage holds \(head.header("Content-Length") ?? "nothing") bytes of \(size) (HTTP \(head.status))"
            )
        }
        return head.header("ETag")
    }

    public func remove(bucket: String, key: ObjectKey) async throws(WorkFailure) {
        let response: HTTPResponse
        do {
            response = try await send(HTTPRequest(
                method: .delete, url: url(bucket, key), headers: headers, body: [], signature: signature, timeout: configuration.deleteTimeout
            ))
        } catch {
            throw WorkFailure(code: WorkFailure.storageUnavailable, message: "cannot remove '\(key.rawValue)' from the object storage: \(error)")
        }
        guard (200..<300).contains(response.status) || response.status == 404 else { throw failure(response, writing: key) }
    }

    public func removeStagingFolder(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Removes the scratch directory's download and staging folders in which nothing changed for
    /// `age`: left by a process that died while it used them (a job or a GET stopped by a crash
    /// or a kill), they hold whole copies of objects and nothing else removes them. Returns how
    /// many went. `age` must be longer than any job runs, which reads its input all along.
    @discardableResult
    public func removeAbandonedScratch(olderThan age: Duration) -> Int {
        let files = FileManager.default
        let cutoff = Date().addingTimeInterval(-Double(age.components.seconds))
        var removed = 0
        for bucket in (try? files.contentsOfDirectory(atPath: configuration.scratchDirectory)) ?? [] {
            let bucketFolder = configuration.scratchDirectory + "/" + bucket
            for name in (try? files.contentsOfDirectory(atPath: bucketFolder)) ?? [] where name.hasPrefix(ObjectKey.reservedPrefix) {
                let folder = bucketFolder + "/" + name
                guard AbandonedStaging.isAbandoned(folder, before: cutoff), (try? files.removeItem(atPath: folder)) != nil else { continue }
                removed += 1
            }
        }
        return removed
    }

    public func displayPrefixes(bucket: String) -> [(path: String, shownAs: String)] {
        [(configuration.scratchDirectory + "/" + bucket + "/", "")]
    }

    // MARK: Multipart upload

    /// Initiate, upload `partSize` parts in order, complete; a failure aborts the upload, so the
    /// store keeps no parts.
    private func multipartUpload(_ path: String, size: Int, bucket: String, key: ObjectKey) async throws(WorkFailure) {
        let objectURL = url(bucket, key)
        // `uploads=` rather than `uploads`: the signature's canonical query needs the `=`.
        let initiate = try await perform(
            HTTPRequest(method: .post, url: objectURL + "?uploads=", headers: headers, body: [], signature: signature), writing: key
        )
        guard (200..<300).contains(initiate.status),
              let uploadID = (try? XMLDocumentParser.parse(initiate.body))?.text("UploadId"), !uploadID.isEmpty
        else { throw failure(initiate, writing: key) }
        let upload = "uploadId=" + Self.encode(uploadID, keepSlash: false)
        do throws(WorkFailure) {
            var parts: [XMLTree] = []
            var partETags: [String] = []
            var offset = 0
            let partSize = Self.partSize(configuration.partSize, forUploadOf: size)
            while offset < size {
                let length = min(partSize, size - offset)
                // Query parameters in sorted order, as the signature's canonical request lists them.
                var put = HTTPRequest(
                    method: .put, url: objectURL + "?partNumber=\(parts.count + 1)&" + upload, headers: headers, body: [], signature: signature
                )
                put.upload = FileRegion(path: path, offset: offset, length: length)
                let response = try await perform(put, writing: key)
                guard (200..<300).contains(response.status), let etag = response.header("ETag") else { throw failure(response, writing: key) }
                partETags.append(etag)
                parts.append(XMLTree("Part", children: [XMLTree("PartNumber", text: String(parts.count + 1)), XMLTree("ETag", text: etag)]))
                offset += length
            }
            let body = Array(XMLTree("CompleteMultipartUpload", children: parts).xmlString().utf8)
            let request = HTTPRequest(
                method: .post, url: objectURL + "?" + upload, headers: headers + [HTTPHeader("Content-Type", "application/xml")],
                body: body, signature: signature
            )
            // Retried as S3 asks (its answer may also be a 200 with an <Error> body, when
            // completing fails late), so a large output is not lost at its last request.
            let complete: HTTPResponse
            do {
                complete = try await retrying({ try await client.send(request) }, status: { $0.status == 200 && Self.isErrorBody($0) ? 500 : $0.status })
            } catch {
                throw WorkFailure(code: WorkFailure.storageUnavailable, message: "cannot upload '\(key.rawValue)' to the object storage: \(error)")
            }
            // A retry whose earlier try took effect (its answer lost) finds the upload gone; so
            // may libcurl's own retry of a request whose reused connection died, which this
            // does not see. The stored object's ETag, made from the parts', tells.
            if complete.status == 404, try await storedETag(objectURL, key) == Self.multipartETag(partETags) { return }
            guard (200..<300).contains(complete.status), !Self.isErrorBody(complete) else {
                throw failure(complete, writing: key)
            }
        } catch {
            // In a task of its own, so that a cancelled job's parts are dropped too: the client
            // sends nothing from a cancelled task.
            let abort = HTTPRequest(
                method: .delete, url: objectURL + "?" + upload, headers: headers, body: [], signature: signature, timeout: configuration.deleteTimeout
            )
            _ = try? await Task { try await send(abort) }.value
            throw error
        }
    }

    // MARK: Requests

    var signature: AWSSignature {
        AWSSignature(accessKeyID: configuration.accessKeyID, secretAccessKey: configuration.secretAccessKey, region: configuration.region)
    }

    /// The payload is not hashed (libcurl cannot hash a body it streams from a file).
    var headers: [HTTPHeader] { [HTTPHeader("x-amz-content-sha256", "UNSIGNED-PAYLOAD")] }

    /// The object's URL, path-style or virtual-host style.
    func url(_ bucket: String, _ key: ObjectKey) -> String {
        bucketURL(bucket) + Self.encode(key.rawValue, keepSlash: true)
    }

    /// The bucket's URL, ending in `/`.
    func bucketURL(_ bucket: String) -> String {
        let storeBucket = configuration.buckets[bucket] ?? bucket
        let endpoint = configuration.endpoint.hasSuffix("/") ? String(configuration.endpoint.dropLast()) : configuration.endpoint
        if configuration.pathStyle { return endpoint + "/" + storeBucket + "/" }
        guard let scheme = endpoint.range(of: "://") else { return endpoint + "/" + storeBucket + "/" }
        return endpoint[..<scheme.upperBound] + storeBucket + "." + endpoint[scheme.upperBound...] + "/"
    }

    func perform(_ request: HTTPRequest, reading key: ObjectKey) async throws(WorkFailure) -> HTTPResponse {
        var signed = request
        signed.headers += headers
        signed.signature = signature
        do {
            return try await send(signed)
        } catch {
            throw Self.unreachable(error, reading: key)
        }
    }

    private func perform(_ request: HTTPRequest, writing key: ObjectKey) async throws(WorkFailure) -> HTTPResponse {
        do {
            return try await send(request)
        } catch {
            throw WorkFailure(code: WorkFailure.storageUnavailable, message: "cannot upload '\(key.rawValue)' to the object storage: \(error)")
        }
    }

    /// `configured`, or larger for a file that would need more than S3's 10,000 parts: the
    /// least whole MiB that makes do with them.
    static func partSize(_ configured: Int, forUploadOf size: Int) -> Int {
        let needed = (size + maxParts - 1) / maxParts
        guard needed > configured else { return configured }
        return ((needed + (1 << 20) - 1) >> 20) << 20
    }

    /// The most parts S3 takes in one upload.
    static let maxParts = 10_000

    /// The ETag S3 gives an object completed from parts of these ETags: the MD5 of their MD5s,
    /// and their count. Nil when a part's ETag is not an MD5 (a store that makes its own).
    static func multipartETag(_ partETags: [String]) -> String? {
        var digests: [UInt8] = []
        for etag in partETags {
            let hex = Array(etag.utf8.filter { $0 != UInt8(ascii: "\"") })
            guard hex.count == 32 else { return nil }
            for index in stride(from: 0, to: 32, by: 2) {
                guard let byte = UInt8(String(decoding: hex[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
                digests.append(byte)
            }
        }
        return "\"" + Insecure.MD5.hash(data: digests).map { String(format: "%02x", $0) }.joined() + "-\(partETags.count)\""
    }

    /// The ETag of the object at `objectURL` as the store has it now, nil when there is none.
    private func storedETag(_ objectURL: String, _ key: ObjectKey) async throws(WorkFailure) -> String? {
        let head = try await perform(HTTPRequest(method: .head, url: objectURL, headers: headers, body: [], signature: signature), writing: key)
        return (200..<300).contains(head.status) ? head.header("ETag") : nil
    }

    /// Whether `response` is S3's `<Error>` body (which may come with a 200).
    static func isErrorBody(_ response: HTTPResponse) -> Bool {
        !response.body.isEmpty && (try? XMLDocumentParser.parse(response.body))?.name == "Error"
    }

    /// Sends `request`, retried (`retrying`) unless it is a POST: a retried initiate would leave
    /// an upload behind, and the complete's retries know what a lost answer means
    /// (`multipartUpload`).
    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        if request.method == .post { return try await client.send(request) }
        return try await retrying({ try await client.send(request) }, status: \.status)
    }

    /// `attempt`'s answer, tried again after each of `retryDelays` while the store answers a
    /// transient status or cannot be reached (a connection refused, reset, dropped or stalled;
    /// not a whole request's timeout, an hour); never once the job is cancelled.
    func retrying<Answer>(_ attempt: () async throws -> Answer, status: (Answer) -> Int) async throws -> Answer {
        var delays = configuration.retryDelays[...]
        while true {
            let answer: Answer
            do {
                answer = try await attempt()
            } catch {
                guard !Task.isCancelled, Self.isTransient(error), let delay = delays.popFirst() else { throw error }
                try await Task.sleep(for: delay)
                continue
            }
            guard Self.transientStatuses.contains(status(answer)), !Task.isCancelled, let delay = delays.popFirst() else { return answer }
            try await Task.sleep(for: delay)
        }
    }

    /// The answers S3 asks clients to send a request again after.
    public static let transientStatuses: Set<Int> = [500, 502, 503, 504]
    /// S3's error codes for a failure that passes, whatever the status they come with.
    static let transientCodes: Set<String> = ["InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout"]

    private static func isTransient(_ error: any Error) -> Bool {
        guard let error = error as? HTTPClientError else { return false }
        return [.connectFailed, .resolveFailed, .transport, .stalled].contains(error.code)
    }

    private static func unreachable(_ error: any Error, reading key: ObjectKey) -> WorkFailure {
        if let failure = error as? WorkFailure { return failure }
        return WorkFailure(code: WorkFailure.storageUnavailable, message: "cannot read '\(key.rawValue)' from the object storage: \(error)")
    }

    func failure(_ response: HTTPResponse, reading key: ObjectKey) -> WorkFailure {
        Self.failure(response, "cannot read '\(key.rawValue)'")
    }

    private func failure(_ response: HTTPResponse, writing key: ObjectKey) -> WorkFailure {
        Self.failure(response, "cannot write '\(key.rawValue)'")
    }

    /// A refused key or signature is `StorageAccessDenied`; what sending again later may get
    /// past is `StorageUnavailable`, which the dispatcher hands back to the queue: a server error
    /// or a request to slow down (5xx, 429, or S3's codes for them, which it also sends with a
    /// 200 to a multipart complete, and its 400 `RequestTimeout`). Any other answer (a missing
    /// bucket, a conflict) is `StorageRefused`, final for the job. The message carries S3's own
    /// error code.
    static func failure(_ response: HTTPResponse, _ what: String) -> WorkFailure {
        let error = try? XMLDocumentParser.parse(response.body)
        let answer = error?.text("Code").map { "\($0) (HTTP \(response.status))" } ?? "HTTP \(response.status)"
        let detail = error?.text("Message").map { ": " + $0 } ?? ""
        let passing = response.status >= 500 || response.status == 429 || response.status == 200
            || error?.text("Code").map(transientCodes.contains) == true
        let code =
            if [401, 403].contains(response.status) { "StorageAccessDenied" }
            else if passing { WorkFailure.storageUnavailable }
            else { "StorageRefused" }
        return WorkFailure(code: code, message: "\(what): the object storage answered \(answer)\(detail)")
    }

    /// S3's URI encoding: every byte but `A-Z a-z 0-9 - . _ ~` (and `/` in paths) as `%XX`.
    static func encode(_ text: String, keepSlash: Bool) -> String {
        URIEncoding.encode(text, keepSlash: keepSlash)
    }
}
