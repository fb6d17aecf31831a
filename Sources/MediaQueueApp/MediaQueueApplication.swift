import Foundation
public import Logging
public import MediaQueueAMQP
public import MediaQueueAPI
import MediaQueueConsole
import Crypto
public import MediaQueueCore
import MediaQueueEngine
import MediaQueueHTTPClient
import MediaQueuePostgres
import MediaQueueSQLite
import MediaQueueWorkers
public import ServiceLifecycle
import UnixSignals

/// The composition root: builds the store, the broker connections, the workers and the services
/// from a configuration. `mediaqueue serve` runs it; integration tests run it in-process.
public struct MediaQueueApplication: Sendable {
    public let configuration: MediaQueueConfiguration
    public let store: any JobStore
    public let logger: Logger
    /// Identifies this process in job leases.
    public let nodeID: String
    /// Workers beyond the built-in ones (benchmarks and tests register their own).
    let extraWorkers: [any MediaWorker]
    /// Where the buckets' objects are: the storage folder, or an S3-compatible store.
    public let storage: any ObjectStorage
    /// What the engine measures, exported at `/metrics`.
    let metrics: EngineMetrics
    let exporter = PrometheusExporter()

    /// `existingStore`: open only a SQLite file that is already there (the one-shot commands,
    /// which would otherwise answer from a new empty store when run outside serve's folder).
    public init(
        configuration: MediaQueueConfiguration, store: (any JobStore)? = nil, existingStore: Bool = false, extraWorkers: [any MediaWorker] = [],
        logger: Logger
    ) throws {
        self.configuration = configuration
        self.extraWorkers = extraWorkers
        self.logger = logger
        let base: any JobStore
        if let store {
            base = store
        } else if let url = configuration.databaseURL {
            // A third of the claim lease: jobs a late commit claimed still have two thirds of
            // it, and the dispatcher renews before that ends.
            base = try PostgresJobStore(
                url: url, maximumConnections: configuration.databaseMaxConnections,
                commitInProgressPatience: .seconds(configuration.leaseSeconds / 3), logger: logger
            )
        } else {
            if existingStore, !FileManager.default.fileExists(atPath: configuration.databasePath) {
                throw ConfigurationError(
                    "no MediaQueue database at \(configuration.databasePath): give this command serve's configuration (--config, or MEDIAQUEUE_DATA_DIR or MEDIAQUEUE_DATABASE_URL)"
                )
            }
            // Jobs submitted here are kept for this process's own claims; one that does not
            // dispatch (another process on the folder runs them) would only fill the cache.
            base = try SQLiteJobStore(
                path: configuration.databasePath, recentJobsLimit: configuration.roles.contains(.dispatch) ? Self.recentJobsLimit : 0
            )
        }
        if configuration.metrics {
            metrics = EngineMetrics(factory: exporter.factory)
            self.store = MeteredJobStore(base, metrics: metrics)
        } else {
            metrics = .disabled
            self.store = base
        }
        storage = configuration.objectStorage()
        self.nodeID = "\(ProcessInfo.processInfo.hostName)/\(ProcessInfo.processInfo.processIdentifier)/\(randomHex32().prefix(6))"
    }

    /// How many submitted, unclaimed jobs a dispatching process keeps parsed for its claims.
    static let recentJobsLimit = 20_000

    /// The job types this process runs.
    public var workers: WorkerRegistry {
        let ffmpeg = FFmpegConfiguration(
            ffmpegPath: configuration.ffmpegPath, ffprobePath: configuration.ffprobePath,
            jobTimeout: .seconds(configuration.jobTimeoutSeconds)
        )
        var workers: [any MediaWorker] = [
            MediaInfoWorker(configuration: ffmpeg, logger: logger),
            SnapshotWorker(configuration: ffmpeg, logger: logger),
            TranscodeWorker(configuration: ffmpeg, logger: logger),
            AnimationWorker(configuration: ffmpeg, logger: logger),
            ConcatWorker(configuration: ffmpeg, logger: logger),
            SegmentWorker(configuration: ffmpeg, logger: logger),
        ]
        if configuration.enableNoop { workers.append(NoopWorker()) }
        return WorkerRegistry(workers + extraWorkers)
    }

    /// The queues a submission can go to, with new buckets' defaults from the configuration.
    public func queueDirectory() -> QueueDirectory {
        let configuration = self.configuration
        return QueueDirectory(store: store) { configuration.defaultQueueTemplate(now: SystemTimeSource().now) }
    }

    /// Creates the default bucket's `queue-1` if this is the first start, so it is there to be
    /// listed and configured before any job arrives.
    public func prepare() async throws -> MediaQueue {
        if configuration.s3 == nil {
            try FileManager.default.createDirectory(atPath: configuration.resolvedStorageDir + "/" + configuration.bucket, withIntermediateDirectories: true)
        }
        return try await queueDirectory().defaultQueue(bucket: configuration.bucket)
    }

    /// A broker connection configured from `url` and the TLS settings.
    public func makeConnection(url: String, name: String, maxBodyBytes: Int? = nil) throws -> AMQPConnection {
        var amqp = try configuration.amqpConfiguration(url: url, name: "\(name) \(nodeID)")
        amqp.maxBodyBytes = maxBodyBytes
        return AMQPConnection(configuration: amqp, logger: logger)
    }

    /// Starts and advances workflow runs; `onJobsStored` wakes this process's dispatcher,
    /// `onOutboxQueued` its relays.
    public func workflowRunner(
        _ workers: WorkerRegistry, onJobsStored: @escaping @Sendable () -> Void = {}, onOutboxQueued: @escaping @Sendable () -> Void = {}
    ) -> WorkflowRunner {
        WorkflowRunner(
            store: store, queues: queueDirectory(), templates: templateResolver, workers: workers, formatting: configuration.formatting,
            time: SystemTimeSource(), onJobsStored: onJobsStored, onOutboxQueued: onOutboxQueued
        ) { [logger] run, error in
            if let refusal = error as? CIError, refusal.code == .queueFull {
                logger.info("a workflow run waits for room in its queue", metadata: ["run.id": "\(run.id)", "workflow.id": "\(run.workflowID)"])
                return
            }
            logger.warning("a workflow run started but could not be moved on; the workflow service's next scan will", metadata: [
                "run.id": "\(run.id)", "workflow.id": "\(run.workflowID)", "error": "\(error)",
            ])
        }
    }

    var templateResolver: TemplateResolver {
        TemplateResolver(store: store, builtInIDs: Set(SystemTemplates.all.map(\.id)))
    }

    /// How AMQP and HTTP submissions become jobs; a job's own `CallBack` URL gets the same early
    /// address check as queue rules.
    func submissionFactory(_ workers: WorkerRegistry) -> SubmissionFactory {
        let configuration = self.configuration
        let limits = SubmissionLimits(
            maxBodyBytes: configuration.maxBodyBytes, maxOperations: configuration.maxOperations, maxUserDataBytes: configuration.maxUserDataBytes,
            maxObjectKeyBytes: configuration.maxObjectKeyBytes
        )
        return SubmissionFactory(queues: queueDirectory(), workers: workers, limits: limits, templates: templateResolver, mqNames: configuration.mqNamePolicy) {
            url throws(CIError) in
            try configuration.checkCallbackURL(url, element: "CallBack")
        }
    }

    /// The REST API's settings from the configuration.
    public func apiOptions() throws -> APIOptions {
        let address = try APIOptions.address(configuration.httpAddress)
        var options = APIOptions(
            host: address.host, port: address.port, credentials: try Credential.parseList(configuration.credentials),
            allowAnonymous: configuration.anonymous, hostSuffixes: configuration.hostSuffixes, maxBodyBytes: configuration.maxBodyBytes,
            maxJobIDs: configuration.maxJobIDs, maxHeaderCount: configuration.maxHeaderCount, maxHeaderBytes: configuration.maxHeaderBytes
        )
        options.idleTimeout = .seconds(configuration.apiIdleTimeoutSeconds)
        let metricsToken = configuration.metricsToken.trimmingCharacters(in: .whitespacesAndNewlines)
        options.metricsToken = metricsToken.isEmpty ? nil : metricsToken
        if let limit = configuration.apiMaxConnections { options.maxConnections = limit }
        if let certificate = configuration.tlsCertificateFile, let key = configuration.tlsKeyFile {
            options.tls = (certificate, key)
        }
        return options
    }

    /// The services of the configured roles, ready for a `ServiceGroup`. `onListening` receives
    /// the API's address once it accepts connections.
    public func makeServices(onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }) throws -> [any Service] {
        let configuration = self.configuration
        let formatting = configuration.formatting
        let httpRelayWakeup = Wakeup()
        let relayWakeup = Wakeup()
        // With the dispatcher and the relay in one process, committed events go to the relay in
        // memory instead of waiting for its next outbox read, leased to that relay for as long
        // as the relay leases what it reads.
        let relayOptions = RelayOptions(retrySchedule: configuration.retrySchedule, lease: .seconds(configuration.relayLeaseSeconds))
        let handoff = configuration.roles.isSuperset(of: [.dispatch, .relay]) ? DeliveryHandoff(wakeup: relayWakeup, lease: relayOptions.lease, limit: relayOptions.handoffLimit) : nil
        let signers = CallbackSigners(store: store, refresh: configuration.callbackSecretRefresh)
        let workers = self.workers
        // Connections come first in the list: the group stops services in reverse order, so they
        // close only after the services that use them have finished.
        var connections: [any Service] = []
        var services: [any Service] = []
        let readiness = NodeReadiness(store: store)
        var brokers: [(name: String, connection: AMQPConnection)] = []
        func watch(_ connection: AMQPConnection, role: String, forReadiness: Bool = true) {
            connections.append(AMQPConnectionService(connection))
            if forReadiness { readiness.watch(connection, role: role) }
            brokers.append((role, connection))
        }

        // The brokers of TDMQ callbacks by region, for the relay and for the dispatcher's progress
        // events. A node without the relay role has them for progress events alone, which are
        // best effort, so its readiness does not wait for them. A region's broker is a callback
        // destination, as an HTTP receiver is: while it is away its deliveries wait in the
        // outbox, and the node (its API, intake and jobs) is no less ready.
        var regions: MQRegions?
        if !configuration.roles.isDisjoint(with: [.relay, .dispatch]) {
            let name = configuration.roles.contains(.relay) ? "relay" : "progress"
            func connect(_ url: String, _ role: String, forReadiness: Bool) throws -> AMQPConnection {
                let connection = try makeConnection(url: url, name: role)
                watch(connection, role: role, forReadiness: forReadiness)
                return connection
            }
            let fallback = try connect(configuration.amqpURL, name, forReadiness: configuration.roles.contains(.relay))
            var regional: [String: any MessageBroker] = [:]
            for (region, url) in configuration.mqRegions.sorted(by: { $0.key < $1.key }) {
                regional[region] = try connect(url, "\(name) \(region)", forReadiness: false)
            }
            regions = MQRegions(brokers: regional, fallback: fallback)
        }

        // Its handle lets this process's intake claim jobs as it stores them (handed over in
        // memory) and its API say that jobs were stored.
        let endedRuns = RunsToAdvance()
        let dispatcher = configuration.roles.contains(.dispatch)
            ? DispatcherService(
                store: store, workers: workers,
                options: DispatcherOptions(
                    owner: nodeID, storage: storage,
                    downloader: HTTPInputDownloader(
                        client: HTTPClient(configuration: configuration.inputURLClientConfiguration),
                        maxBytes: configuration.inputURLMaxBytes, timeout: .seconds(configuration.inputURLTimeoutSeconds)
                    ),
                    maxRunningJobs: configuration.maxRunningJobs,
                    leaseDuration: .seconds(configuration.leaseSeconds), housekeepingInterval: .seconds(1), pollInterval: .milliseconds(250),
                    drainTimeout: .seconds(configuration.drainTimeoutSeconds), maxAttempts: configuration.maxJobAttempts
                ),
                formatting: formatting, relayWakeups: RelayWakeups(tdmq: relayWakeup, http: httpRelayWakeup, workflows: endedRuns),
                handoff: handoff, progress: regions.map { progressNotifier(regions: $0, signers: signers) }, logger: logger
            )
            : nil

        if configuration.roles.contains(.intake) {
            // A submission larger than the limit is refused whatever it holds: it is not read into memory.
            let connection = try makeConnection(url: configuration.amqpURL, name: "intake", maxBodyBytes: configuration.maxBodyBytes)
            watch(connection, role: "intake")
            services.append(IntakeService(
                broker: connection, store: store, factory: submissionFactory(workers),
                options: IntakeOptions(
                    queue: configuration.intakeQueue, deadLetterQueue: configuration.deadLetterQueue,
                    queueType: IntakeOptions.QueueType(rawValue: configuration.intakeQueueType) ?? .classic, defaultBucket: configuration.bucket
                ),
                formatting: formatting, dispatcher: dispatcher?.handle, writeHealth: readiness.intakeWrites,
                queueHealth: readiness.intakeQueue, logger: logger
            ))
        }
        let runner = workflowRunner(workers, onJobsStored: { dispatcher?.handle.jobsStored() }) {
            relayWakeup.signal()
            httpRelayWakeup.signal()
        }
        if let dispatcher {
            services.append(dispatcher)
            if configuration.retentionDays > 0 {
                let retention = RetentionOptions(
                    retention: .milliseconds(Int(saturating: configuration.retentionDays * 86_400_000)),
                    interval: .seconds(configuration.retentionSweepSeconds)
                )
                services.append(RetentionService(store: store, options: retention, logger: logger))
            }
            services.append(WorkflowService(
                runner: runner, store: store, storage: storage, endedRuns: endedRuns,
                options: WorkflowServiceOptions(arrivalGrace: .seconds(configuration.workflowArrivalGraceSeconds)), logger: logger
            ))
        }
        if configuration.roles.contains(.relay), let regions {
            services.append(TDMQRelayService(
                store: store, regions: regions,
                options: relayOptions, wakeup: relayWakeup, handoff: handoff, metrics: metrics, logger: logger
            ))
            services.append(HTTPRelayService(
                store: store, client: HTTPClient(configuration: configuration.httpClientConfiguration),
                options: configuration.httpRelayOptions, wakeup: httpRelayWakeup, signers: signers, metrics: metrics, logger: logger
            ))
        }
        if let address = configuration.operationsAddress {
            // A listener of its own: probes and scrapes do not wait behind the API's connections
            // (at its connection limit they would sit in the listen backlog, and a liveness probe
            // would fail on a node that is only busy). `onListening` reports the API's address
            // where there is an API.
            var reportListening = onListening
            if configuration.roles.contains(.api) { reportListening = { _, _ in } }
            var options = try apiOptions()
            (options.host, options.port) = try APIOptions.address(address)
            services.append(APIService(
                options: options, store: store, factory: submissionFactory(workers), formatting: formatting, logger: logger,
                readiness: readiness.check, metrics: metricsSource(brokers: brokers), onListening: reportListening,
                endpoints: .operations
            ))
        }
        if configuration.roles.contains(.api) {
            services.append(APIService(
                options: try apiOptions(), store: store,
                factory: submissionFactory(workers), formatting: formatting, logger: logger, readiness: readiness.check,
                metrics: metricsSource(brokers: brokers),
                onSubmitted: { dispatcher?.handle.jobsStored() }, onListening: onListening,
                checkRule: { rule, bucket throws(CIError) in try configuration.checkCallbackRule(rule, bucket: bucket) },
                objects: ObjectAPI(storage: storage, maxObjectBytes: configuration.maxObjectBytes) { bucket, key, headers, publish in
                    if let error = try await runner.upload(bucket: bucket, key: key.rawValue, cosHeaders: headers, publish: publish).deferred {
                        logger.warning("an upload's workflow runs start later", metadata: ["object": "\(key)", "error": "\(error)"])
                    }
                },
                officialTemplates: Self.officialTemplates, workflows: runner,
                extraRoutes: { [console = try console(workers, workflows: runner)] router in console.addRoutes(to: router) }
            ))
        }
        // Shutdown runs from the end of the list: the node says it is draining, intake stops,
        // then dispatch, then the relay flushes, then the connections close.
        return connections + services.reversed() + [DrainWatcher(readiness: readiness)]
    }

    /// The web console, on the API's router.
    func console(_ workers: WorkerRegistry, workflows: WorkflowRunner) throws -> ConsoleController {
        let configuration = self.configuration
        let sessionKey = configuration.consoleSessionKey.isEmpty
            ? Array(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) })
            : Array(SHA256.hash(data: Array(configuration.consoleSessionKey.utf8)))
        return try ConsoleController(
            store: store, storage: storage,
            options: ConsoleOptions(
                credentials: try Credential.parseList(configuration.credentials),
                adminToken: configuration.consoleAdminToken.isEmpty ? nil : configuration.consoleAdminToken,
                allowAnonymous: configuration.anonymous, anonymousHosts: AnonymousHosts(suffixes: configuration.hostSuffixes),
                sessionKey: sessionKey, defaultBucket: configuration.bucket,
                tags: workers.tags, servedOverTLS: configuration.tlsCertificateFile != nil
            ),
            formatting: configuration.formatting, logger: logger,
            checkRule: { rule, bucket throws(CIError) in try configuration.checkCallbackRule(rule, bucket: bucket) }, workflows: workflows
        )
    }

    /// Sends running jobs' `TaskProgress` events where a rule or a job asks for them.
    func progressNotifier(regions: MQRegions, signers: CallbackSigners) -> ProgressNotifier {
        let interval = Duration.seconds(configuration.progressIntervalSeconds)
        return ProgressNotifier(
            store: store, regions: regions, client: HTTPClient(configuration: configuration.httpClientConfiguration),
            options: ProgressOptions(interval: interval, sendTimeout: min(interval, configuration.callbackTimeout)),
            formatting: configuration.formatting, signers: signers, logger: logger
        )
    }

    /// `/metrics`: the store's gauges and the brokers' reconnect counts read now, then every series.
    func metricsSource(brokers: [(name: String, connection: AMQPConnection)]) -> MetricsSource {
        let metrics = self.metrics, store = self.store, exporter = self.exporter
        return MetricsSource {
            try await metrics.collect(from: store, connections: brokers)
            return exporter.render()
        }
    }

    /// Runs every service until SIGTERM or SIGINT, then drains: intake stops first, running jobs
    /// get time to finish, pending callbacks are flushed, connections close last.
    /// `handleSignals: false` for in-process use (tests), where cancelling the task stops it.
    public func run(handleSignals: Bool = true, onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }) async throws {
        let queue = try await prepare()
        logger.info("mediaqueue started", metadata: [
            "bucket": "\(configuration.bucket)", "queue.id": "\(queue.id)", "storage": "\(configuration.s3.map { "S3 at \($0.endpoint)" } ?? configuration.resolvedStorageDir)",
            "intake": "\(configuration.intakeQueue)", "roles": "\(configuration.roles.map(\.rawValue).sorted().joined(separator: ","))",
        ])
        // Left by a process that died; an hour past the longest a job may run, no process still
        // reads them.
        let abandonedAge = Duration.seconds(configuration.jobTimeoutSeconds + 3600)
        if let s3 = storage as? S3ObjectStorage {
            let removed = s3.removeAbandonedScratch(olderThan: abandonedAge)
            if removed > 0 { logger.notice("abandoned S3 scratch folders removed", metadata: ["folders": "\(removed)"]) }
        } else if let local = storage as? LocalObjectStorage {
            // On a thread of its own: it walks the whole storage, which may hold many files.
            let logger = self.logger
            Thread {
                let removed = local.removeAbandonedStaging(olderThan: abandonedAge)
                if removed > 0 { logger.notice("abandoned staging folders removed", metadata: ["folders": "\(removed)"]) }
            }.start()
        }
        var group = ServiceGroupConfiguration(
            services: try makeServices(onListening: onListening).map { .init(service: $0) },
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger
        )
        // A backstop: if a service still waits (for a broker that never answers, say) well after
        // running jobs had their drain time, the group cancels what is left; nothing unacked or
        // unfinished is lost by that, it is redelivered or taken again after its lease.
        group.maximumGracefulShutdownDuration = .seconds(configuration.drainTimeoutSeconds + 30)
        try await ServiceGroup(configuration: group).run()
    }
}
