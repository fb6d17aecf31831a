/// The names a request served without signing in (`MEDIAQUEUE_ANONYMOUS=1`) may reach this server
/// by.
///
/// Anonymous mode trusts the network, but a browser on that network runs any site's scripts:
/// with DNS rebinding a site points a name of its own at this server, and the browser then sends
/// it the site's requests and lets the site read the answers, as same-origin. Such a request
/// carries the site's name in `Host`. An IP address, `localhost`, CI's `myqcloud.com` names and
/// the configured suffixes are names no outside site can point here, so only those are served.
public struct AnonymousHosts: Sendable {
    /// `MEDIAQUEUE_HOST_SUFFIXES`: the suffix itself and every name under it.
    public var suffixes: [String]

    public init(suffixes: [String]) {
        self.suffixes = suffixes.map { $0.lowercased() }
    }

    /// Whether a request with this `Host` (authority) may be served anonymously. A request with
    /// none did not come from a browser.
    public func allow(_ authority: String?) -> Bool {
        guard let authority else { return true }
        let host = RequestHost.name(authority)
        if host.hasPrefix("[") || Self.isIPv4(host) { return true }
        if host == "localhost" || host.hasSuffix(".localhost") || RequestHost.ciBucket(host) != nil { return true }
        return suffixes.contains { host == $0 || host.hasSuffix("." + $0) }
    }

    /// Whether a request that names this server by an allowed host came from a page of another
    /// site: a browser sends such a page's form or `fetch` here (the page cannot read the answer,
    /// but a submission would be made). Browsers say so in `Sec-Fetch-Site`, and name the page's
    /// origin in `Origin` on every request other than a same-origin GET or HEAD.
    public static func isCrossSite(origin: String?, fetchSite: String?, authority: String?) -> Bool {
        if let fetchSite, fetchSite != "same-origin", fetchSite != "none" { return true }
        guard let origin else { return false }
        return !RequestHost.isSameOrigin(origin, authority: authority)
    }

    /// Why a request for `authority` was refused, for the error the caller answers with.
    public func refusal(_ authority: String) -> String {
        "anonymous access is served only to requests that name this server by an IP address, localhost, a CI myqcloud.com name "
            + "or a name under MEDIAQUEUE_HOST_SUFFIXES (a page elsewhere can point a name of its own, like '\(RequestHost.name(authority))', "
            + "here); sign the request or add the name to MEDIAQUEUE_HOST_SUFFIXES"
    }

    private static func isIPv4(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) && Int($0)! <= 255 }
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
