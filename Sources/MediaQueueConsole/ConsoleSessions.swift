import Crypto
import Foundation
import MediaQueueCore

/// Who is signed in to the console.
public enum ConsolePrincipal: Sendable, Hashable {
    /// The admin token's holder: every bucket.
    case admin
    /// A configured key pair: its buckets.
    case key(secretID: String)
    /// Nobody signed in, with `MEDIAQUEUE_ANONYMOUS=1`: every bucket.
    case anonymous

    var cookieName: String {
        switch self {
        case .admin: "admin"
        case .key(let secretID): "key:" + secretID
        case .anonymous: "anonymous"
        }
    }

    init?(cookieName: String) {
        if cookieName == "admin" {
            self = .admin
        } else if cookieName.hasPrefix("key:"), cookieName.count > 4 {
            self = .key(secretID: String(cookieName.dropFirst(4)))
        } else {
            return nil
        }
    }
}

/// Console sessions as signed cookies: `<principal>|<expiry seconds>|<nonce>|<HMAC>`, verified
/// on every request, so any node with the same key accepts them and no session table is kept.
/// The principal is looked up in the configuration each time: a key removed from it signs nobody
/// in any more. Each session has its own CSRF token, derived from the cookie.
struct ConsoleSessions: Sendable {
    static let cookieName = "mq_console"

    /// Bytes, not a `SymmetricKey`, which is not `Sendable`; a key is made per signature.
    let key: [UInt8]
    let lifetime: Duration

    init(key: [UInt8], lifetime: Duration) {
        self.key = key
        self.lifetime = lifetime
    }

    /// A new session's cookie value.
    func issue(_ principal: ConsolePrincipal, now: Timestamp) -> String {
        let payload = "\(principal.cookieName)|\(now.seconds + lifetime.components.seconds)|\(randomHex32().prefix(16))"
        return payload + "|" + mac(payload)
    }

    /// The principal of a cookie value this key signed and that has not expired.
    func verify(_ cookie: String, now: Timestamp) -> ConsolePrincipal? {
        guard let bar = cookie.lastIndex(of: "|") else { return nil }
        let payload = String(cookie[..<bar])
        guard constantTimeEquals(mac(payload), String(cookie[cookie.index(after: bar)...])) else { return nil }
        let fields = payload.split(separator: "|", omittingEmptySubsequences: false)
        guard fields.count >= 3, let expiry = Int64(fields[fields.count - 2]), now.seconds < expiry else { return nil }
        return ConsolePrincipal(cookieName: fields.dropLast(2).joined(separator: "|"))
    }

    /// The token every form of the session carries; a request without it changes nothing.
    func csrfToken(for cookie: String) -> String {
        mac("csrf|" + cookie)
    }

    private func mac(_ text: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: key))).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
