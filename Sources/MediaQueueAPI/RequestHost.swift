/// What a request's `Host` (its authority) names, read one way for the bucket, for anonymous
/// access and for same-origin checks.
public enum RequestHost {
    /// The authority without its port, lower-cased, without a trailing dot (`[…]` kept whole).
    public static func name(_ authority: String) -> String {
        var host = authority.lowercased()
        if host.hasPrefix("[") {
            if let end = host.firstIndex(of: "]") { host = String(host[...end]) }
            return host
        }
        if let colon = host.lastIndex(of: ":") { host = String(host[..<colon]) }
        while host.hasSuffix(".") { host.removeLast() }
        return host
    }

    /// The bucket of `<bucket>.ci.<region>.myqcloud.com` or `<bucket>.cos.<region>.myqcloud.com`
    /// (the names CI's SDKs send), and whether it is the COS name; nil for other names.
    public static func ciBucket(_ host: String) -> (bucket: String, cos: Bool)? {
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count == 5, !labels[0].isEmpty, labels[1] == "ci" || labels[1] == "cos", !labels[2].isEmpty,
              labels[3] == "myqcloud", labels[4] == "com"
        else { return nil }
        return (String(labels[0]), labels[1] == "cos")
    }

    /// Whether a browser's `Origin` is this server's own, as the request's authority names it.
    public static func isSameOrigin(_ origin: String, authority: String?) -> Bool {
        let host = authority ?? ""
        return origin == "http://\(host)" || origin == "https://\(host)"
    }
}
