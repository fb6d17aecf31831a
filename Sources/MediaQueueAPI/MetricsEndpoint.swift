import HTTPTypes
import Hummingbird
import Logging
import MediaQueueCore
import NIOCore

/// Renders the process's metrics in Prometheus text format, collected fresh for each scrape.
public struct MetricsSource: Sendable {
    let render: @Sendable () async throws -> [UInt8]

    public init(_ render: @escaping @Sendable () async throws -> [UInt8]) {
        self.render = render
    }
}

/// `GET /metrics` for Prometheus, answered before the CI middleware (no bucket, no COS
/// signature), like the health probes; with a token configured, only to scrapes that send it
/// (the series name every bucket and queue).
struct MetricsEndpoint<Context: RequestContext>: RouterMiddleware {
    let source: MetricsSource
    let token: String?

    // `@concurrent` matches the protocol as Hummingbird declares it (NonisolatedNonsendingByDefault is on here).
    @concurrent
    func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path == "/metrics" else { return try await next(request, context) }
        guard request.method == .get || request.method == .head else {
            return Response(status: .methodNotAllowed, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "use GET\n")))
        }
        if let token, !(Self.bearer(of: request).map { constantTimeEquals($0, token) } ?? false) {
            return Response(
                status: .unauthorized, headers: [.contentType: "text/plain; charset=utf-8", .wwwAuthenticate: "Bearer realm=\"metrics\""],
                body: .init(byteBuffer: ByteBuffer(string: "send the metrics token as Authorization: Bearer <token>\n"))
            )
        }
        do {
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: try await source.render()))
            )
        } catch {
            context.logger.error("metrics could not be collected", metadata: ["error": "\(error)"])
            return Response(
                status: .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: "metrics could not be collected; the service log says why\n"))
            )
        }
    }

    private static func bearer(of request: Request) -> String? {
        guard let value = request.headers[.authorization], value.count > 7, value.prefix(7).lowercased() == "bearer " else { return nil }
        return String(value.dropFirst(7).drop { $0 == " " })
    }
}
