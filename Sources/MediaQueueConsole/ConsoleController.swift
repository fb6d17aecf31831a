import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
public import MediaQueueAPI
public import MediaQueueCore
import NIOCore

/// The web console at `/console`: server-rendered pages for operating queues, jobs and
/// callbacks, signed in with the API's key pairs or the admin token.
///
/// Every page reads the store through `JobStore`, so it works on every store and every node.
/// Sessions are signed cookies (`HttpOnly`, `SameSite=Strict`); every form that changes state
/// carries the session's CSRF token and must come from the console's own origin.
public struct ConsoleController: Sendable {
    let store: any JobStore
    let storage: any ObjectStorage
    let options: ConsoleOptions
    let formatting: CIFormatting
    let time: any TimeSource
    let checkRule: @Sendable (NotifyConfig, _ bucket: String) throws(CIError) -> Void
    /// Cancels jobs, moving on the runs of workflow node jobs cancelled while they waited.
    let workflows: WorkflowRunner?
    let logger: Logger
    let sessions: ConsoleSessions
    let pages: ConsolePages
    let loginThrottle: LoginThrottle
    private let credentials: [String: Credential]

    public init(
        store: any JobStore, storage: any ObjectStorage, options: ConsoleOptions, formatting: CIFormatting,
        time: any TimeSource = SystemTimeSource(), logger: Logger,
        checkRule: @escaping @Sendable (NotifyConfig, _ bucket: String) throws(CIError) -> Void = { _, _ in }, workflows: WorkflowRunner? = nil
    ) throws {
        self.workflows = workflows
        self.store = store
        self.storage = storage
        self.options = options
        self.formatting = formatting
        self.time = time
        self.checkRule = checkRule
        self.logger = logger
        sessions = ConsoleSessions(key: options.sessionKey, lifetime: options.sessionLifetime)
        loginThrottle = options.loginThrottle
        pages = try ConsolePages()
        credentials = Dictionary(options.credentials.map { ($0.secretID, $0) }, uniquingKeysWith: { _, last in last })
    }

    public func addRoutes(to router: Router<APIContext>) {
        router.get("/console/assets/console.css") { _, _ in asset(ConsoleAssets.css, type: "text/css; charset=utf-8") }
        router.get("/console/assets/console.js") { _, _ in asset(ConsoleAssets.javascript, type: "text/javascript; charset=utf-8") }
        router.get("/console/login") { request, _ in await respond(request) { try await loginPage(request) } }
        router.post("/console/login") { request, context in await respond(request) { try await login(request, client: context.clientAddress) } }
        router.post("/console/logout") { request, _ in await respond(request) { try await logout(request) } }
        router.get("/console") { request, _ in await page(request) { viewer in home(viewer) } }
        router.get("/console/go") { request, _ in await page(request) { viewer in try go(request, viewer) } }
        addOverviewRoutes(to: router)
        addQueueRoutes(to: router)
        addJobRoutes(to: router)
        addWorkflowRoutes(to: router)
        addCallbackRoutes(to: router)
    }

    // MARK: Signing in

    func loginPage(_ request: Request) async throws -> Response {
        if try await viewer(of: request) != nil { return .redirect(to: "/console") }
        var frame = PageFrame(title: "Sign in")
        if options.allowAnonymous, let host = request.head.authority { frame.error = options.anonymousHosts.refusal(host) }
        return html(pages.render("login", LoginModel(page: frame, secretID: nil)))
    }

    func login(_ request: Request, client: String) async throws -> Response {
        let form = try await formBody(request)
        // No session yet, so no token: the origin guards against signing a visitor in to
        // someone else's account from another site.
        try checkOrigin(request, required: true)
        let account = form["adminToken"] != nil ? "admin" : form["secretId"] ?? ""
        let now = time.now
        if let wait = loginThrottle.wait(account: account, client: client, now: now) {
            let seconds = max(1, wait.components.seconds + (wait.components.attoseconds > 0 ? 1 : 0))
            var frame = PageFrame(title: "Sign in")
            frame.error = "Too many failed sign-ins for this account from here; try again in \(seconds) s."
            var response = html(pages.render("login", LoginModel(page: frame, secretID: form["secretId"])), status: .tooManyRequests)
            response.headers[.retryAfter] = String(seconds)
            return response
        }
        var principal: ConsolePrincipal?
        if let token = form["adminToken"] {
            if options.adminToken.map({ constantTimeEquals($0, token) }) == true { principal = .admin }
        } else if let secretID = form["secretId"], let secretKey = form["secretKey"], let credential = credentials[secretID],
                  constantTimeEquals(credential.secretKey, secretKey) {
            principal = .key(secretID: secretID)
        }
        guard let principal else {
            loginThrottle.failed(account: account, client: client, now: now)
            // Quoted and escaped, and cut short: anyone may post it, and a line break in it would
            // write a line of the log's own.
            let secretID = form["secretId"].map { String(reflecting: String($0.prefix(64))) } ?? "-"
            logger.info("console sign-in refused", metadata: ["secret.id": "\(secretID)", "client": "\(client)"])
            var frame = PageFrame(title: "Sign in")
            frame.error = "Wrong SecretId and SecretKey, or wrong admin token."
            return html(pages.render("login", LoginModel(page: frame, secretID: form["secretId"])), status: .unauthorized)
        }
        loginThrottle.succeeded(account: account, client: client)
        var response = Response.redirect(to: "/console")
        let cookie = sessions.issue(principal, secret: secret(of: principal) ?? "", now: time.now)
        response.setCookie(sessionCookie(cookie, maxAge: Int(options.sessionLifetime.components.seconds), request: request))
        return response
    }

    func logout(_ request: Request) async throws -> Response {
        guard let viewer = try await viewer(of: request) else { return .redirect(to: "/console/login") }
        _ = try await verifiedForm(request, viewer)
        var response = Response.redirect(to: "/console/login")
        response.setCookie(sessionCookie("", maxAge: 0, request: request))
        return response
    }

    /// `Secure` when the browser reached the console over TLS: this server's own, or a proxy's in
    /// front that says so.
    private func sessionCookie(_ value: String, maxAge: Int, request: Request) -> Cookie {
        let secure = options.servedOverTLS || request.headers[.xForwardedProto]?.lowercased() == "https"
        return Cookie(
            name: ConsoleSessions.cookieName, value: value, maxAge: maxAge, path: "/console", secure: secure, httpOnly: true, sameSite: .strict
        )
    }

    /// What `principal` signs in with now; nil when the configuration no longer has it.
    func secret(of principal: ConsolePrincipal) -> String? {
        switch principal {
        case .admin: options.adminToken
        case .key(let secretID): credentials[secretID]?.secretKey
        case .anonymous: nil
        }
    }

    func home(_ viewer: ConsoleViewer) -> Response {
        guard let bucket = viewer.buckets.first else {
            return html(pages.render("message", MessageModel(page: viewer.frame("No bucket", bucket: nil), message: "This key may use no bucket.")))
        }
        return .redirect(to: "/console/b/\(bucket)")
    }

    func go(_ request: Request, _ viewer: ConsoleViewer) throws -> Response {
        let bucket = FormData(request.uri.query ?? "")["bucket"] ?? ""
        guard viewer.mayUse(bucket) else { throw ConsoleError.forbidden(bucket) }
        return .redirect(to: "/console/b/\(bucket)")
    }

    // MARK: Who is asking

    /// The request's viewer: the session's, or an anonymous one where that is allowed (for this
    /// `Host` too); nil when nobody is signed in.
    func viewer(of request: Request) async throws -> ConsoleViewer? {
        if let cookie = request.cookies[ConsoleSessions.cookieName]?.value, !cookie.isEmpty,
           let principal = sessions.verify(cookie, now: time.now, currentSecret: secret(of:)) {
            let buckets = if case .key(let secretID) = principal { credentials[secretID]?.buckets.sorted() ?? [] } else { try await allBuckets() }
            return ConsoleViewer(principal: principal, buckets: buckets, csrf: sessions.csrfToken(for: cookie))
        }
        if options.allowAnonymous, options.anonymousHosts.allow(request.head.authority) {
            return ConsoleViewer(principal: .anonymous, buckets: try await allBuckets(), csrf: "")
        }
        return nil
    }

    private func allBuckets() async throws -> [String] {
        Set(try await store.queues(bucket: nil).map(\.bucket)).union([options.defaultBucket]).sorted()
    }

    /// A form posted by `viewer`: it must come from this origin and, from a signed-in viewer, carry
    /// the session's CSRF token. Anonymous viewers have no session, so for them the origin is the
    /// whole check and must be present.
    func verifiedForm(_ request: Request, _ viewer: ConsoleViewer) async throws -> FormData {
        let form = try await formBody(request)
        try checkOrigin(request, required: viewer.principal == .anonymous)
        if viewer.principal != .anonymous {
            guard let token = form["csrf"], constantTimeEquals(token, viewer.csrf) else { throw ConsoleError.csrf }
        }
        return form
    }

    /// Browsers send `Origin` with a form's POST; one naming another site, or `null` (a sandboxed
    /// frame, a `data:` page), is refused, and so is none where `required`.
    private func checkOrigin(_ request: Request, required: Bool) throws {
        guard let origin = request.headers[.origin] else {
            if required { throw ConsoleError.csrf }
            return
        }
        guard RequestHost.isSameOrigin(origin, authority: request.head.authority) else { throw ConsoleError.csrf }
    }

    func formBody(_ request: Request) async throws -> FormData {
        var request = request
        do {
            let buffer = try await request.collectBody(upTo: options.maxFormBytes)
            return FormData(String(buffer: buffer))
        } catch is NIOTooManyBytesError {
            throw ConsoleError.badRequest("the form is larger than \(options.maxFormBytes) bytes")
        }
    }

    // MARK: Responding

    /// Runs a handler that needs no viewer, turning errors into pages.
    func respond(_ request: Request, _ handler: () async throws -> Response) async -> Response {
        do {
            return try await handler()
        } catch {
            return errorPage(error, viewer: nil)
        }
    }

    /// Runs a handler for a signed-in viewer; others go to the sign-in page.
    func page(_ request: Request, _ handler: (ConsoleViewer) async throws -> Response) async -> Response {
        var found: ConsoleViewer?
        do {
            guard let viewer = try await viewer(of: request) else {
                return request.method == .get ? .redirect(to: "/console/login") : errorPage(ConsoleError.signedOut, viewer: nil)
            }
            found = viewer
            return try await handler(viewer)
        } catch {
            return errorPage(error, viewer: found)
        }
    }

    /// Runs a handler for a viewer allowed to see the bucket named in the path.
    func bucketPage(_ request: Request, _ context: APIContext, _ handler: (ConsoleViewer, String) async throws -> Response) async -> Response {
        await page(request) { viewer in
            let bucket = try context.parameters.require("bucket")
            guard viewer.mayUse(bucket) else { throw ConsoleError.forbidden(bucket) }
            return try await handler(viewer, bucket)
        }
    }

    private func errorPage(_ error: any Error, viewer: ConsoleViewer?) -> Response {
        let (status, message): (HTTPResponse.Status, String)
        switch error {
        case let error as ConsoleError:
            (status, message) = (error.status, error.message)
        case let error as CIError where error.code != .internalError:
            (status, message) = (.badRequest, error.message)
        default:
            logger.error("console request failed", metadata: ["error": "\(error)"])
            (status, message) = (.internalServerError, "Something went wrong; the service log has the details.")
        }
        let frame = viewer?.frame("Not done", bucket: nil) ?? PageFrame(title: "Not done")
        return html(pages.render("message", MessageModel(page: frame, message: message)), status: status)
    }

    func html(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy: "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
                .xFrameOptions: "DENY",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body))
        )
    }

    private func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "max-age=300"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

struct LoginModel: Sendable {
    var page: PageFrame
    var secretID: String?
}

struct MessageModel: Sendable {
    var page: PageFrame
    var message: String
}

/// A console request that cannot be served, with the page's status and text.
struct ConsoleError: Error, Sendable {
    var status: HTTPResponse.Status
    var message: String

    static let signedOut = ConsoleError(status: .unauthorized, message: "Your session has ended; sign in again.")
    static let csrf = ConsoleError(status: .forbidden, message: "The form did not come from this console (or the session changed); reload the page and try again.")
    static func forbidden(_ bucket: String) -> ConsoleError {
        ConsoleError(status: .forbidden, message: "You may not use bucket \(bucket).")
    }
    static func notFound(_ what: String) -> ConsoleError { ConsoleError(status: .notFound, message: "\(what) does not exist.") }
    static func badRequest(_ message: String) -> ConsoleError { ConsoleError(status: .badRequest, message: message) }
}

extension HTTPField.Name {
    static let contentSecurityPolicy = HTTPField.Name("Content-Security-Policy")!
    static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
}
