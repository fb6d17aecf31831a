/// The endpoint a callback URL goes to, `host:port` in lowercase (`example.com:443`): the unit
/// of the HTTP relay's per-endpoint concurrency limit, so one slow endpoint never holds up
/// deliveries to the others.
public enum CallbackEndpoint {
    /// `host:port` of an `http(s)` URL (default ports filled in), or the URL itself if it has no
    /// recognisable authority.
    public static func of(url: String) -> String {
        guard let colon = url.firstIndex(of: ":"), url[colon...].hasPrefix("://") else { return url.lowercased() }
        let scheme = url[..<colon].lowercased()
        var authority = url[url.index(colon, offsetBy: 3)...]
        if let end = authority.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) { authority = authority[..<end] }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let host: Substring
        var port: Substring?
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = authority[...close]
            let rest = authority[authority.index(after: close)...]
            if rest.hasPrefix(":") { port = rest.dropFirst() }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            port = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        let defaultPort = scheme == "https" ? "443" : "80"
        let portText = port.map(String.init).flatMap { $0.isEmpty ? nil : $0 } ?? defaultPort
        return "\(host.lowercased()):\(portText)"
    }
}

extension OutboxEntry {
    /// `host:port` for URL deliveries; `mq:<region>` for TDMQ ones.
    public var endpoint: String {
        switch target {
        case .url(let url): CallbackEndpoint.of(url: url)
        case .mq(_, _, let region): Self.endpoint(ofRegion: region)
        }
    }

    /// The endpoint of TDMQ deliveries to `region`.
    public static func endpoint(ofRegion region: String) -> String {
        "mq:\(region)"
    }
}
