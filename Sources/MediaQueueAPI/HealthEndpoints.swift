import HTTPTypes
import Hummingbird
import NIOCore

/// What `/readyz` asks: the reasons this node should not get traffic now; none means ready.
public struct ReadinessCheck: Sendable {
    let reasons: @Sendable () async -> [String]

    public init(_ reasons: @escaping @Sendable () async -> [String]) {
        self.reasons = reasons
    }

    public static let alwaysReady = ReadinessCheck { [] }
}

/// `/healthz` and `/readyz` for an orchestrator's probes, answered before the CI middleware
/// (no bucket, no signature), in plain text.
///
/// `/healthz` answers 200 while the process serves HTTP at all (liveness). `/readyz` answers 200
/// only when `readiness` finds nothing wrong, else 503 with one reason a line.
struct HealthEndpoints<Context: RequestContext>: RouterMiddleware {
    let readiness: ReadinessCheck

    static var paths: Set<String> { ["/healthz", "/readyz"] }

    // `@concurrent` matches the protocol as Hummingbird declares it (NonisolatedNonsendingByDefault is on here).
    @concurrent
    func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        guard Self.paths.contains(request.uri.path) else { return try await next(request, context) }
        guard request.method == .get || request.method == .head else {
            return Self.text(.methodNotAllowed, "use GET\n")
        }
        if request.uri.path == "/healthz" { return Self.text(.ok, "ok\n") }
        let reasons = await readiness.reasons()
        if reasons.isEmpty { return Self.text(.ok, "ready\n") }
        return Self.text(.serviceUnavailable, reasons.map { "not ready: \($0)\n" }.joined())
    }

    private static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body))
        )
    }
}
