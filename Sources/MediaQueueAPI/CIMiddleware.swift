import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MediaQueueCore
import MediaQueueXML

/// Names the bucket, checks the COS signature, stamps `x-ci-request-id`, and turns every error
/// into CI's `<Error>` body with a fitting status.
struct CIMiddleware: RouterMiddleware {
    typealias Context = APIContext

    let options: APIOptions
    let time: any TimeSource
    let logger: Logger
    private let credentials: [String: Credential]
    private let anonymousHosts: AnonymousHosts

    init(options: APIOptions, time: any TimeSource, logger: Logger) {
        self.options = options
        self.anonymousHosts = options.anonymousHosts
        self.time = time
        self.logger = logger
        self.credentials = Dictionary(options.credentials.map { ($0.secretID, $0) }, uniquingKeysWith: { _, last in last })
    }

    // `@concurrent` matches the protocol as Hummingbird declares it (NonisolatedNonsendingByDefault is on here).
    @concurrent
    func handle(_ request: Request, context: APIContext, next: @concurrent (Request, APIContext) async throws -> Response) async throws -> Response {
        var context = context
        context.requestID = randomHex32()
        if let tooLarge = headerLimitError(request) {
            var response = errorResponse(tooLarge, request: request, context: context)
            response.headers[.ciRequestID] = context.requestID
            return response
        }
        // The console signs its users in itself and answers in HTML. A COS-signed request on a
        // bucket's object host is a client's, for an object whose key is under `console/`.
        if request.uri.path == "/console" || request.uri.path.hasPrefix("/console/"), !isSignedObjectCall(request) {
            return try await next(request, context)
        }
        var response: Response
        do {
            let named = try bucket(of: request)
            (context.bucket, context.addressesObjects) = (named.bucket, named.objects)
            try authenticate(request, bucket: context.bucket, namedByHost: named.byHost)
            response = try await next(request, context)
        } catch let error as CIError where error.code == .internalError {
            // The service's own failure: what it says (a database's answer, a host, a path) is for
            // the operator's log, not for the client.
            logger.error("API request failed", metadata: ["error": "\(error.message)", "request.id": "\(context.requestID)"])
            response = errorResponse(Self.internalError(context), request: request, context: context)
        } catch let error as CIError {
            response = errorResponse(error, request: request, context: context)
        } catch let error as HTTPError {
            let code: CIError.Code = switch error.status {
            case .contentTooLarge: APIError.entityTooLarge
            case .notFound: APIError.notFound
            case .methodNotAllowed: APIError.methodNotAllowed
            default: .invalidArgument
            }
            let message = error.status == .contentTooLarge
                ? "the request body is larger than \(options.maxBodyBytes) bytes"
                : (error.body ?? "\(error.status.reasonPhrase)")
            response = errorResponse(CIError(code, message), request: request, context: context)
        } catch {
            logger.error("API request failed", metadata: ["error": "\(error)", "request.id": "\(context.requestID)"])
            response = errorResponse(Self.internalError(context), request: request, context: context)
        }
        response.headers[.ciRequestID] = context.requestID
        response.headers[.server] = "MediaQueue"
        return response
    }

    static func internalError(_ context: APIContext) -> CIError {
        CIError(.internalError, "internal error; see the service log for request \(context.requestID)")
    }

    /// `<bucket>.ci.<region>.myqcloud.com`, `<bucket>.cos.<region>.myqcloud.com` (what the SDKs
    /// send, even to an IP), `<bucket>.<configured suffix>`, or path style `/<bucket>/queue…`;
    /// and whether the request is an object call (a path on the bucket's COS or suffix host that
    /// names no CI resource), and whether the Host named the bucket (the path, signed, did not).
    func bucket(of request: Request) throws(CIError) -> (bucket: String, objects: Bool, byHost: Bool) {
        let host = RequestHost.name(request.head.authority ?? "")
        if let named = RequestHost.ciBucket(host) {
            try BucketName.validate(named.bucket)
            return (named.bucket, named.cos && !Self.isCICall(request.uri.path), true)
        }
        for suffix in options.hostSuffixes where host.hasSuffix("." + suffix.lowercased()) {
            let name = String(host.dropLast(suffix.count + 1))
            if !name.contains(".") {
                try BucketName.validate(name)
                return (name, !Self.isCICall(request.uri.path), true)
            }
        }
        let segments = request.uri.path.split(separator: "/")
        if segments.count >= 2, Self.resources.contains(String(segments[1])) {
            let bucket = String(segments[0])
            try BucketName.validate(bucket)
            return (bucket, false, false)
        }
        throw CIError(APIError.noSuchBucket, "name the bucket in the Host header (<bucket>.ci.<region>.myqcloud.com) or as the first path segment (/<bucket>/queue)")
    }

    private func isSignedObjectCall(_ request: Request) -> Bool {
        let signed = request.headers[.authorization] != nil || request.queryParameters.has("q-signature")
        return signed && (try? bucket(of: request))?.objects == true
    }

    static let resources: Set<String> = ["queue", "jobs", "mediabucket", "template", "workflow", "triggerworkflow", "workflowexecution"]

    /// Whether a path on a bucket's host names a CI resource rather than an object. The SDKs send
    /// both to one host when given an IP, so an object key whose first segment is a resource's
    /// name (`jobs/a.mp4`) is reached only through the storage itself.
    static func isCICall(_ path: String) -> Bool {
        guard let first = path.split(separator: "/", omittingEmptySubsequences: true).first else { return false }
        return resources.contains(String(first))
    }

    /// Refuses a request with more header fields or header bytes than configured (the console's
    /// and the probes' too), before anything reads them.
    func headerLimitError(_ request: Request) -> CIError? {
        let fields = request.headers.count
        if fields > options.maxHeaderCount {
            return CIError(APIError.requestHeaderTooLarge, "the request has \(fields) header fields; at most \(options.maxHeaderCount) are allowed")
        }
        let bytes = request.headers.reduce(0) { $0 + $1.name.rawName.utf8.count + $1.value.utf8.count }
        if bytes > options.maxHeaderBytes {
            return CIError(APIError.requestHeaderTooLarge, "the request's headers hold \(bytes) bytes; at most \(options.maxHeaderBytes) are allowed")
        }
        return nil
    }

    func authenticate(_ request: Request, bucket: String, namedByHost: Bool) throws(CIError) {
        let parameters = request.queryParameters.map { ($0.name, $0.value) }
        let authorization: COSAuthorization
        if let header = request.headers[.authorization], !header.isEmpty {
            guard !parameters.contains(where: { $0.0 == "q-signature" }) else {
                throw CIError(APIError.accessDenied, "the request is signed twice (an Authorization header and q-signature in the query); send one")
            }
            authorization = try COSAuthorization(header: header)
        } else if let presigned = try COSAuthorization(query: parameters) {
            authorization = presigned
        } else {
            if options.allowAnonymous {
                guard anonymousHosts.allow(request.head.authority) else {
                    throw CIError(APIError.accessDenied, anonymousHosts.refusal(request.head.authority ?? ""))
                }
                let (origin, fetchSite) = (request.headers[.origin], request.headers[.secFetchSite])
                guard !AnonymousHosts.isCrossSite(origin: origin, fetchSite: fetchSite, authority: request.head.authority) else {
                    throw CIError(APIError.accessDenied, "an unsigned request from a page of another site (Origin \(origin ?? "-"), Sec-Fetch-Site \(fetchSite ?? "-")) is not served; sign it")
                }
                return
            }
            throw CIError(APIError.accessDenied, "the request is not signed (no Authorization header, no q-signature in the query)")
        }
        guard let credential = credentials[authorization.secretID] else {
            throw CIError(APIError.invalidAccessKeyID, "the SecretId in q-ak is not known")
        }
        let now = time.now.seconds
        if now < authorization.signStart { throw CIError(APIError.requestNotYetValid, "the signature is not valid before \(authorization.signStart)") }
        if now > authorization.signEnd { throw CIError(APIError.requestExpired, "the signature expired at \(authorization.signEnd)") }
        // The signing key (q-key-time) has a life of its own: a leaked one must not sign for ever.
        if now < authorization.keyStart { throw CIError(APIError.requestNotYetValid, "the signing key is not valid before \(authorization.keyStart)") }
        if now > authorization.keyEnd { throw CIError(APIError.requestExpired, "the signing key expired at \(authorization.keyEnd)") }
        // The request's Host is its authority; a Host left among the fields is a second one,
        // which could be signed while the first names the bucket.
        guard !request.headers.contains(where: { $0.name.canonicalName == "host" }) else {
            throw CIError(.invalidArgument, "the request has more than one Host header")
        }
        let authority = request.head.authority ?? ""
        let fields = request.headers.map { ($0.name.canonicalName, $0.value) }
        let headers = fields + [("host", authority)]
        // A signed name sent twice (in any case) could have one value signed and the other used.
        for (listed, pairs, what) in [(authorization.headerList, headers, "header"), (authorization.paramList, parameters, "query parameter")] {
            for name in listed where pairs.count(where: { COSSigner.encode($0.0).lowercased() == name }) > 1 {
                throw CIError(.invalidArgument, "the signed \(what) \(name) appears more than once; send each once")
            }
        }
        func signed(host: String) -> Bool {
            let expected = authorization.expectedSignature(
                secretKey: credential.secretKey, method: request.method.rawValue, path: request.uri.path.removingPercentEncoding ?? request.uri.path,
                headers: fields + [("host", host)], parameters: parameters
            )
            return constantTimeEquals(expected, authorization.signature)
        }
        // Tencent's Python SDK signs the Host it sends without its port (`urlparse(…).hostname`)
        // when the service is not on 80 or 443; the Go SDK signs it whole.
        let hostWithoutPort = RequestHost.name(authority)
        let matches = signed(host: authority)
            || (authorization.headerList.contains("host") && hostWithoutPort != authority.lowercased() && signed(host: hostWithoutPort))
        guard matches else {
            throw CIError(APIError.signatureDoesNotMatch, "the request signature does not match; check the SecretKey and what was signed")
        }
        guard credential.buckets.contains(bucket) else {
            throw CIError(APIError.accessDenied, "this key may not use bucket \(bucket)")
        }
        // Only the Host names the bucket then: unsigned, a signature made for one of the key's
        // buckets would serve for all of them.
        if namedByHost, credential.buckets.count > 1, !authorization.headerList.contains("host") {
            throw CIError(APIError.accessDenied, "sign the Host header (q-header-list): this key may use several buckets, and only the Host names \(bucket)")
        }
    }

    func errorResponse(_ error: CIError, request: Request, context: APIContext) -> Response {
        error.response(requestID: context.requestID, resource: request.uri.path)
    }
}

extension CIError {
    /// CI's `<Error>` answer, with the HTTP status of its code.
    func response(requestID: String, resource: String) -> Response {
        let body = xml(requestID: requestID, resource: resource).xmlBytes(declaration: true)
        return Response(
            status: .init(code: APIError.status(of: code)),
            headers: [.contentType: "application/xml"],
            body: .init(byteBuffer: ByteBuffer(bytes: body))
        )
    }
}

extension HTTPField.Name {
    static let ciRequestID = HTTPField.Name("x-ci-request-id")!
    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
}
