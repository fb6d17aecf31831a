public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
public import MediaQueueCore
import NIOCore
import NIOSSL
public import ServiceLifecycle

/// The CI REST API (Hummingbird 2) as a service of the process's `ServiceGroup`.
public struct APIService: Service {
    let options: APIOptions
    let controller: CIController
    let time: any TimeSource
    let logger: Logger
    let onListening: @Sendable (String, Int) -> Void
    let readiness: ReadinessCheck
    let metrics: MetricsSource?
    /// Everything, or only `/healthz`, `/readyz` and `/metrics` (a node without the API role).
    let endpoints: Endpoints
    /// Routes served beside CI's, outside its signatures (the console).
    let extraRoutes: @Sendable (Router<APIContext>) -> Void
    let objects: ObjectController?
    let templates: TemplateController
    let workflows: WorkflowController?

    /// `onSubmitted` is called after `POST /jobs` stored jobs (to wake the dispatcher);
    /// `onListening` with the address once the server accepts connections; `readiness` answers
    /// `/readyz`; `metrics`, when given, answers `/metrics`.
    public init(
        options: APIOptions, store: any JobStore, factory: SubmissionFactory, formatting: CIFormatting,
        time: any TimeSource = SystemTimeSource(), logger: Logger, readiness: ReadinessCheck = .alwaysReady, metrics: MetricsSource? = nil,
        onSubmitted: @escaping @Sendable () -> Void = {}, onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in },
        checkRule: @escaping @Sendable (NotifyConfig, _ bucket: String) throws(CIError) -> Void = { _, _ in },
        objects: ObjectAPI? = nil, officialTemplates: [Definition] = [], workflows: WorkflowRunner? = nil,
        extraRoutes: @escaping @Sendable (Router<APIContext>) -> Void = { _ in }, endpoints: Endpoints = .all
    ) {
        self.endpoints = endpoints
        self.extraRoutes = extraRoutes
        self.objects = objects.map {
            ObjectController(storage: $0.storage, maxObjectBytes: $0.maxObjectBytes, upload: $0.upload)
        }
        self.options = options
        self.controller = CIController(
            store: store, factory: factory, formatting: formatting, time: time, maxBodyBytes: options.maxBodyBytes, maxJobIDs: options.maxJobIDs,
            onSubmitted: onSubmitted, workflows: workflows,
            checkRule: checkRule
        )
        self.templates = TemplateController(
            store: store, workers: factory.workers, official: officialTemplates, formatting: formatting, time: time,
            body: { [controller] request in try await controller.body(request) }, workflows: workflows
        )
        let body: @Sendable (Request) async throws -> [UInt8] = { [controller] request in try await controller.body(request) }
        // Workflows start on objects: served where the object calls are.
        self.workflows = objects.flatMap { objects in
            workflows.map { runner in
                WorkflowController(
                    store: store, runner: runner, storage: objects.storage, formatting: formatting, time: time, body: body, checkRule: checkRule
                )
            }
        }
        self.time = time
        self.logger = logger
        self.onListening = onListening
        self.readiness = readiness
        self.metrics = metrics
    }

    /// The router with every endpoint and the CI middleware; tests drive it with HummingbirdTesting.
    public func makeRouter() -> Router<APIContext> {
        let router = Router(context: APIContext.self)
        router.middlewares.add(HealthEndpoints(readiness: readiness))
        if let metrics { router.middlewares.add(MetricsEndpoint(source: metrics, token: options.metricsToken)) }
        guard endpoints == .all else { return router }
        router.middlewares.add(CIMiddleware(options: options, time: time, logger: logger))
        if let objects { router.middlewares.add(objects) }
        // A path the CI middleware left unsigned (the console's) never reaches CI's routes, which
        // it could if the router matched `/console/jobs` as `/:bucket/jobs`.
        let ci = router.group().add(middleware: BucketNamed())
        controller.addRoutes(to: ci)
        templates.addRoutes(to: ci)
        workflows?.addRoutes(to: ci)
        extraRoutes(router)
        return router
    }

    public func makeApplication() throws -> some ApplicationProtocol {
        let onListening = self.onListening
        let host = options.host
        return Application(
            router: makeRouter(),
            server: try serverBuilder(),
            configuration: .init(
                address: .hostname(options.host, port: options.port), serverName: "MediaQueue",
                availableConnectionsDelegate: APIConnectionLimit(options.maxConnections, logger: logger)
            ),
            onServerRunning: { channel in
                onListening(host, channel.localAddress?.port ?? 0)
            },
            logger: logger
        )
    }

    /// What a listener serves.
    public enum Endpoints: Sendable, Hashable {
        /// The CI API, the object calls, the console, and the operations endpoints.
        case all
        /// `/healthz`, `/readyz` and `/metrics` only.
        case operations
    }

    /// `run()`, not `runService()`: the latter installs its own signal handlers and service group,
    /// so on SIGTERM the API would stop on its own and our group would see it end unexpectedly.
    public func run() async throws {
        try await makeApplication().run()
    }

    /// HTTP/1.1, behind TLS when a certificate and key are configured (read now, so a bad file
    /// stops the start with its reason).
    func serverBuilder() throws -> HTTPServerBuilder {
        // Idle connections go: held open by the thousand, they would use up the process's
        // descriptors, which the store, storage and ffmpeg need too.
        let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: TimeAmount(options.idleTimeout)))
        guard let tls = options.tls else { return http1 }
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(tls.certificateFile)
            key = try NIOSSLPrivateKey(file: tls.keyFile, format: .pem)
        } catch {
            throw APITLSError(description: "cannot read the TLS certificate \(tls.certificateFile) or key \(tls.keyFile): \(error)")
        }
        let configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        return try .tls(http1, tlsConfiguration: configuration)
    }
}

/// The COS object calls (`PUT`/`GET`/`HEAD`/`DELETE /<key>`, ListObjects) on a storage.
public struct ObjectAPI: Sendable {
    public var storage: any ObjectStorage
    /// Largest object one PUT may upload.
    public var maxObjectBytes: Int
    /// Publishes a complete upload by calling its last argument, with whatever must go with it
    /// (workflow runs, which carry the upload's headers: `WorkflowRunner.upload`); a failure
    /// fails the PUT.
    public var upload: Upload

    public typealias Upload = @Sendable (
        _ bucket: String, _ key: ObjectKey, _ headers: [CosHeader], _ publish: () async throws -> Void
    ) async throws -> Void

    public init(storage: any ObjectStorage, maxObjectBytes: Int = 5 << 30, upload: @escaping Upload = { _, _, _, publish in try await publish() }) {
        self.storage = storage
        self.maxObjectBytes = maxObjectBytes
        self.upload = upload
    }
}

struct APITLSError: Error, CustomStringConvertible {
    let description: String
}

/// Lets through only requests the CI middleware named a bucket for (and so checked).
struct BucketNamed: RouterMiddleware {
    typealias Context = APIContext

    // `@concurrent` matches the protocol as Hummingbird declares it (NonisolatedNonsendingByDefault is on here).
    @concurrent
    func handle(_ request: Request, context: APIContext, next: @concurrent (Request, APIContext) async throws -> Response) async throws -> Response {
        guard !context.bucket.isEmpty else { throw HTTPError(.notFound) }
        return try await next(request, context)
    }
}
