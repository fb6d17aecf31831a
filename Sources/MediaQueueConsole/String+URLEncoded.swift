import MediaQueueCore

extension String {
    /// Escaped for a query string value or a path segment.
    var urlEncoded: String { URIEncoding.encode(self, keepSlash: true) }
}
