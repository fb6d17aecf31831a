public import MediaQueueCore
import MediaQueueHTTPClient
import MediaQueueXML

/// HEAD and ListObjects, passed on to the store.
extension S3ObjectStorage {
    public func objectInfo(bucket: String, key: ObjectKey) async throws(WorkFailure) -> ObjectInfo? {
        let head = try await perform(HTTPRequest(method: .head, url: url(bucket, key), headers: [], body: []), reading: key)
        if head.status == 404 { return nil }
        guard (200..<300).contains(head.status) else { throw failure(head, reading: key) }
        return ObjectInfo(
            key: key.rawValue, size: Int(head.header("Content-Length") ?? "") ?? 0, etag: head.header("ETag") ?? "\"\"",
            lastModified: head.header("Last-Modified").flatMap(HTTPDate.parse) ?? Timestamp(milliseconds: 0)
        )
    }

    /// ListObjects (version 1, whose `marker` is what COS's clients send).
    public func listObjects(bucket: String, _ query: ObjectListQuery) async throws(WorkFailure) -> ObjectListing {
        // Parameters in sorted order, as the signature's canonical request lists them.
        var parameters = [("delimiter", query.delimiter), ("marker", query.marker), ("max-keys", String(query.maxKeys)), ("prefix", query.prefix)]
        parameters.removeAll { $0.1.isEmpty }
        let url = bucketURL(bucket) + "?" + parameters.map { $0.0 + "=" + Self.encode($0.1, keepSlash: false) }.joined(separator: "&")
        var request = HTTPRequest(method: .get, url: url, headers: headers, body: [], signature: signature)
        request.headers = headers
        let response: HTTPResponse
        do {
            response = try await send(request)
        } catch {
            throw WorkFailure(code: WorkFailure.storageUnavailable, message: "cannot list bucket \(bucket) in the object storage: \(error)")
        }
        guard (200..<300).contains(response.status), let result = try? XMLDocumentParser.parse(response.body), result.name == "ListBucketResult" else {
            throw Self.failure(response, "cannot list bucket \(bucket)")
        }
        var listing = ObjectListing()
        for entry in result.children where entry.name == "Contents" {
            listing.objects.append(ObjectInfo(
                key: entry.text("Key") ?? "", size: Int(entry.text("Size") ?? "") ?? 0, etag: entry.text("ETag") ?? "\"\"",
                lastModified: entry.text("LastModified").flatMap(HTTPDate.parseISO) ?? Timestamp(milliseconds: 0)
            ))
        }
        listing.commonPrefixes = result.children.filter { $0.name == "CommonPrefixes" }.compactMap { $0.text("Prefix") }
        listing.isTruncated = result.text("IsTruncated") == "true"
        if listing.isTruncated {
            // S3 gives NextMarker only with a delimiter; otherwise the last key is where to go on.
            let last = [listing.objects.last?.key, listing.commonPrefixes.last].compactMap { $0 }.max { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            listing.nextMarker = result.text("NextMarker") ?? last
        }
        return listing
    }
}
