import Foundation

/// How to reach and talk to the broker.
///
/// `description` shows the URL with the password replaced by `***`; errors never contain it.
public struct AMQPConfiguration: Sendable, CustomStringConvertible {
    /// `amqp://user:pass@host:port/vhost` or `amqps://…`. Defaults: `guest`/`guest`, host
    /// `localhost`, port 5672 (5671 for amqps), vhost `/` (a path of `/` or nothing means `/`;
    /// percent escapes such as `%2F` are decoded). A query string is ignored.
    ///
    /// Several URLs separated by commas name the nodes of a cluster: the connection uses one at a
    /// time, and a failed connect or a lost connection moves it to the next.
    public var url: String
    /// For amqps: a PEM file of trusted CA certificates; when nil, `defaultCAFile()`. With
    /// `verifyPeer` the host name is checked too.
    public var caCertificatePath: String?
    /// For amqps: verify the broker's certificate chain and host name. Default true.
    public var verifyPeer: Bool
    /// Heartbeat interval to negotiate (whole seconds, rounded up; zero disables). Default 10 s.
    public var heartbeat: Duration
    /// Timeout for the TCP connect and the AMQP handshake. Default 10 s.
    public var connectTimeout: Duration
    /// Delay before the first reconnect attempt, doubled after every failed attempt up to the upper
    /// bound. Default 100 ms ... 5 s.
    public var reconnectDelay: ClosedRange<Duration>
    /// Maximum unconfirmed publishes in flight; more wait in the mailbox. Default 1000.
    public var confirmWindow: Int
    /// Shown in the broker's management UI (client property `connection_name`).
    public var connectionName: String
    /// Bodies of consumed (and returned) messages larger than this are not kept: the message comes
    /// with an empty body and `oversizedBodyBytes`. nil keeps every body (the broker's
    /// `max_message_size`, 128 MiB by default, bounds them). `get` keeps every body.
    public var maxBodyBytes: Int?

    /// The CA file an `amqps://` connection trusts when `caCertificatePath` is not set: OpenSSL's
    /// `SSL_CERT_FILE`, else the system's bundle. rabbitmq-c loads no trust store of its own, so
    /// without a file every certificate, a public CA's too, was refused.
    static func defaultCAFile(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let file = environment["SSL_CERT_FILE"], !file.isEmpty { return file }
        return FileManager.default.fileExists(atPath: systemCABundle) ? systemCABundle : nil
    }

    /// Debian's bundle of the CAs the system trusts (package ca-certificates).
    static let systemCABundle = "/etc/ssl/certs/ca-certificates.crt"

    /// Parses and validates `url`; throws `.invalidURL` naming what is wrong.
    public init(url: String) throws(AMQPError) {
        self.url = url
        self.caCertificatePath = nil
        self.verifyPeer = true
        self.heartbeat = .seconds(10)
        self.connectTimeout = .seconds(10)
        self.reconnectDelay = .milliseconds(100) ... .seconds(5)
        self.confirmWindow = 1000
        self.connectionName = "mediaqueue"
        self.maxBodyBytes = nil
        _ = try endpoints()
    }

    /// The parsed URLs, in order; throws if `url` was changed to something invalid after `init`.
    func endpoints() throws(AMQPError) -> [AMQPEndpoint] {
        let urls = url.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !urls.isEmpty else { throw AMQPError(.invalidURL, "no URL given; expected amqp://host or amqps://host") }
        var endpoints: [AMQPEndpoint] = []
        for url in urls { endpoints.append(try AMQPEndpoint(parsing: url)) }
        return endpoints
    }

    /// The URL(s) with the passwords replaced by `***`, for logs and probes.
    public var redactedURL: String {
        (try? endpoints())?.map(\.redactedURL).joined(separator: ",") ?? "<invalid URL>"
    }

    public var description: String {
        "AMQPConfiguration(url: \(redactedURL), heartbeat: \(heartbeat), confirmWindow: \(confirmWindow), connectionName: \(connectionName))"
    }
}

/// The parts of an AMQP URL.
struct AMQPEndpoint: Sendable, Hashable {
    var tls: Bool
    var host: String
    var port: Int
    var user: String
    var password: String
    var vhost: String

    /// The URL with the password replaced, for logs and descriptions.
    var redactedURL: String {
        let vhostPart = vhost == "/" ? "" : (vhost.addingPercentEscapes)
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "\(tls ? "amqps" : "amqp")://\(user):***@\(hostPart):\(port)/\(vhostPart)"
    }

    init(parsing url: String) throws(AMQPError) {
        guard let schemeEnd = url.firstRange(of: "://") else {
            throw AMQPError(.invalidURL, "URL has no scheme; expected amqp://host or amqps://host")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        switch scheme {
        case "amqp": tls = false
        case "amqps": tls = true
        default: throw AMQPError(.invalidURL, "unsupported URL scheme '\(scheme)'; expected amqp or amqps")
        }
        var rest = url[schemeEnd.upperBound...]
        // The user info ends at the last '@': a password may hold '/', '?', '#' or '@' unencoded,
        // and must not be taken for the host, the port or the vhost (nor shown as one).
        let hostStart = rest.lastIndex(of: "@").map { rest.index(after: $0) } ?? rest.startIndex
        if let query = rest[hostStart...].firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<query] }
        let authority: Substring
        let path: Substring
        if let slash = rest[hostStart...].firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        } else {
            authority = rest
            path = ""
        }

        var hostPort = authority
        user = "guest"
        password = "guest"
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try Self.decode(userInfo[..<colon], what: "user name")
                password = try Self.decode(userInfo[userInfo.index(after: colon)...], what: "password")
            } else {
                user = try Self.decode(userInfo, what: "user name")
            }
        }

        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw AMQPError(.invalidURL, "unterminated IPv6 address in URL host")
            }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw AMQPError(.invalidURL, "unexpected characters after IPv6 address in URL host")
            }
        } else if let colon = hostPort.firstIndex(of: ":") {
            host = String(hostPort[..<colon])
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = String(hostPort)
        }
        if host.isEmpty { host = "localhost" }

        if let portText, !portText.isEmpty {
            guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(portText), (1...65535).contains(value) else {
                throw AMQPError(.invalidURL, "invalid port '\(portText)' in URL; expected 1-65535")
            }
            port = value
        } else {
            port = tls ? 5671 : 5672
        }

        if path.isEmpty || path == "/" {
            vhost = "/"
        } else {
            vhost = try Self.decode(path, what: "vhost")
        }
    }

    private static func decode(_ text: Substring, what: String) throws(AMQPError) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else {
                    throw AMQPError(.invalidURL, "bad percent escape in URL \(what)")
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw AMQPError(.invalidURL, "URL \(what) is not valid UTF-8 after decoding")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension String {
    /// Percent-escapes everything but unreserved characters (for showing a vhost in a URL).
    fileprivate var addingPercentEscapes: String {
        var out = ""
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(hex[Int(byte >> 4)])
                out.unicodeScalars.append(hex[Int(byte & 0xF)])
            }
        }
        return out
    }
}
