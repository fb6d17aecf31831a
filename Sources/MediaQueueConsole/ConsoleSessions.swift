import Crypto
import Foundation
import MediaQueueCore

/// Console sessions as signed cookies: `<principal>|<secret fingerprint>|<expiry seconds>|<nonce>|<HMAC>`,
/// verified on every request, so any node with the same key accepts them and no session table
/// is kept. The fingerprint ties a session to the secret it was opened with: a key removed from
/// the configuration, or given a new SecretKey (or a new admin token), signs nobody in any more.
/// Each session has its own CSRF token, derived from the cookie.
struct ConsoleSessions: Sendable {
    static let cookieName = "mq_console"

    /// Bytes, not a `SymmetricKey`, which is not `Sendable`; a key is made per signature.
    let key: [UInt8]
    let lifetime: Duration

    init(key: [UInt8], lifetime: Duration) {
        self.key = key
        self.lifetime = lifetime
    }

    /// A new session's cookie value for `principal`, who signed in with `secret`.
    func issue(_ principal: ConsolePrincipal, secret: String, now: Timestamp) -> String {
        let payload = "\(principal.cookieName)|\(fingerprint(secret))|\(now.seconds + lifetime.components.seconds)|\(randomHex32().prefix(16))"
        return payload + "|" + mac(payload)
    }

    /// The principal of a cookie value this key signed, that has not expired and whose secret
    /// `currentSecret` (nil: the principal is gone) still is.
    func verify(_ cookie: String, now: Timestamp, currentSecret: (ConsolePrincipal) -> String?) -> ConsolePrincipal? {
        guard let bar = cookie.lastIndex(of: "|") else { return nil }
        let payload = String(cookie[..<bar])
        guard constantTimeEquals(mac(payload), String(cookie[cookie.index(after: bar)...])) else { return nil }
        let fields = payload.split(separator: "|", omittingEmptySubsequences: false)
        guard fields.count >= 4, let expiry = Int64(fields[fields.count - 2]), now.seconds < expiry,
              let principal = ConsolePrincipal(cookieName: fields.dropLast(3).joined(separator: "|")),
              let secret = currentSecret(principal), constantTimeEquals(fingerprint(secret), String(fields[fields.count - 3]))
        else { return nil }
        return principal
    }

    private func fingerprint(_ secret: String) -> String {
        String(mac("secret|" + secret).prefix(22))
    }

    /// The token every form of the session carries; a request without it changes nothing.
    func csrfToken(for cookie: String) -> String {
        mac("csrf|" + cookie)
    }

    /// The query parameters of a notice to show after a redirect (what an action did), with its
    /// MAC: a link of someone else's cannot make the console show a text of theirs.
    func noticeParameters(_ text: String) -> String {
        "notice=\(text.urlEncoded)&nmac=\(mac("notice|" + text))"
    }

    /// The notice `query` carries, if this console made it.
    func notice(in query: FormData) -> String? {
        guard let text = query["notice"], let given = query["nmac"], constantTimeEquals(given, mac("notice|" + text)) else { return nil }
        return text
    }

    private func mac(_ text: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: key))).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
