public import Foundation
public import MediaQueueAMQP
public import MediaQueueCore
import MediaQueueWorkers

/// Everything `mediaqueue` can be told, from (lowest to highest precedence) defaults, a JSON
/// configuration file and `MEDIAQUEUE_*` environment variables. The README lists every key.
public struct MediaQueueConfiguration: Sendable, Hashable {
    /// Broker for the intake and for TDMQ callbacks (`MEDIAQUEUE_AMQP_URL`).
    public var amqpURL = "amqp://guest:guest@127.0.0.1:5672/"
    /// CA file for `amqps://` (`MEDIAQUEUE_AMQP_CA_FILE`).
    public var amqpCACertificate: String?
    /// Brokers per TDMQ region (`MEDIAQUEUE_MQ_REGIONS`: `sh=amqp://…,bj=amqp://…`); unlisted
    /// regions use `amqpURL`.
    public var mqRegions: [String: String] = [:]
    /// Holds the SQLite file and, unless `storageDir` is set, `storage/` (`MEDIAQUEUE_DATA_DIR`).
    public var dataDir = "./.data"
    /// The PostgreSQL database that several nodes share as the queue of record
    /// (`MEDIAQUEUE_DATABASE_URL`: `postgres://user:password@host:port/database`, optionally
    /// `?sslmode=disable|prefer|require`); nil for the SQLite file in `dataDir`.
    public var databaseURL: String?
    /// Connections this process opens to that database at most (`MEDIAQUEUE_DATABASE_MAX_CONNECTIONS`).
    public var databaseMaxConnections = 8
    /// Root of the buckets' objects, laid out `<root>/<bucket>/<object>` (`MEDIAQUEUE_STORAGE_DIR`).
    public var storageDir: String?
    /// An S3-compatible store instead of the folder (`MEDIAQUEUE_S3_ENDPOINT`, `http(s)://host[:port]`),
    /// its region and keys (`MEDIAQUEUE_S3_REGION`, `MEDIAQUEUE_S3_ACCESS_KEY_ID`,
    /// `MEDIAQUEUE_S3_SECRET_ACCESS_KEY`), path-style or virtual-host URLs (`MEDIAQUEUE_S3_PATH_STYLE`),
    /// the store's bucket per CI bucket (`MEDIAQUEUE_S3_BUCKETS`: `ci=store,…`), multipart and
    /// range sizes, and a CA file for HTTPS (`MEDIAQUEUE_S3_CA_FILE`).
    public var s3Endpoint: String?
    public var s3Region = "us-east-1"
    public var s3AccessKeyID = ""
    public var s3SecretAccessKey = ""
    public var s3PathStyle = true
    public var s3Buckets: [String: String] = [:]
    public var s3MultipartThresholdBytes = 64 << 20
    public var s3PartBytes = 16 << 20
    public var s3RangeBytes = 64 << 20
    public var s3CAFile: String?
    /// The bucket of submissions that name none (`MEDIAQUEUE_BUCKET`).
    public var bucket = "media-1250000000"
    /// Where the REST API listens (`MEDIAQUEUE_HTTP_ADDRESS`).
    public var httpAddress = "127.0.0.1:8080"
    /// A listener of its own for `/healthz`, `/readyz` and `/metrics`
    /// (`MEDIAQUEUE_OPERATIONS_ADDRESS`): the only HTTP of a node without the API role, and on an
    /// API node a way past the API's connection limit. Nil: a node without the API serves no HTTP
    /// (processes of several roles on one host would otherwise all want the API's port).
    public var operationsAddress: String?
    /// Intake queue and its dead-letter queue (`MEDIAQUEUE_INTAKE_QUEUE`, `MEDIAQUEUE_DEAD_LETTER_QUEUE`).
    public var intakeQueue = "mediaqueue.jobs"
    public var deadLetterQueue = "mediaqueue.jobs.dead"
    /// `classic`, or `quorum` for a RabbitMQ cluster (replicated); both queues get it
    /// (`MEDIAQUEUE_INTAKE_QUEUE_TYPE`). An existing queue keeps the type it was declared with.
    public var intakeQueueType = "classic"
    /// Topic exchange of the default queue's callback rule (`MEDIAQUEUE_EVENTS_EXCHANGE`); empty
    /// for no default rule.
    public var eventsExchange = "job-events"
    /// Result format of that rule, XML or JSON (`MEDIAQUEUE_EVENTS_FORMAT`).
    public var eventsFormat = "XML"
    /// Settings of new default queues (`MEDIAQUEUE_QUEUE_MAX_CONCURRENT`, `MEDIAQUEUE_QUEUE_MAX_SIZE`).
    public var queueMaxConcurrent = 10
    public var queueMaxSize = 10_000
    /// Jobs one process runs at once over all queues (`MEDIAQUEUE_MAX_RUNNING_JOBS`).
    public var maxRunningJobs = 16
    /// Region reported in `JobsDetail` (`MEDIAQUEUE_REGION`).
    public var region = "ap-local"
    /// Offset of printed times, `+0800` style (`MEDIAQUEUE_UTC_OFFSET`).
    public var utcOffset = "+0000"
    /// Lease length in seconds (`MEDIAQUEUE_LEASE_SECONDS`).
    public var leaseSeconds = 60
    /// How many times a job may start before it fails as `WorkerCrashed` instead, when its process
    /// died in each start (`MEDIAQUEUE_MAX_JOB_ATTEMPTS`).
    public var maxJobAttempts = 3
    /// Ended jobs, their delivered (or dead) callbacks and ended workflow runs are removed this
    /// many days after they ended (`MEDIAQUEUE_RETENTION_DAYS`, fractions allowed); 0 keeps them.
    public var retentionDays = 0.0
    /// How often a dispatching process looks for records past their retention
    /// (`MEDIAQUEUE_RETENTION_SWEEP_SECONDS`).
    public var retentionSweepSeconds = 3600
    /// How long a TDMQ delivery stays leased to the relay that took it
    /// (`MEDIAQUEUE_RELAY_LEASE_SECONDS`): a dead relay's unsent events go out from another relay,
    /// or from the restarted process, after this.
    public var relayLeaseSeconds = 15
    /// Signs in to the console for every bucket (`MEDIAQUEUE_CONSOLE_ADMIN_TOKEN`); empty: no admin.
    public var consoleAdminToken = ""
    /// What a scrape of `/metrics` must send as `Authorization: Bearer …` (`MEDIAQUEUE_METRICS_TOKEN`);
    /// empty: `/metrics` is open, like the health probes.
    public var metricsToken = ""
    /// Signs console sessions (`MEDIAQUEUE_CONSOLE_SESSION_KEY`): nodes behind one address need the
    /// same; empty: a random key per process (sessions end when it restarts).
    public var consoleSessionKey = ""
    /// At most one `TaskProgress` event per running job this often (`MEDIAQUEUE_PROGRESS_INTERVAL_SECONDS`).
    public var progressIntervalSeconds = 5
    /// Whether the engine measures itself for `/metrics` (`MEDIAQUEUE_METRICS`, on by default).
    public var metrics = true
    /// Registers the `Noop` tag, for benchmarks (`MEDIAQUEUE_ENABLE_NOOP=1`).
    public var enableNoop = false
    /// ffmpeg and ffprobe (`MEDIAQUEUE_FFMPEG`, `MEDIAQUEUE_FFPROBE`).
    public var ffmpegPath = "/usr/bin/ffmpeg"
    public var ffprobePath = "/usr/bin/ffprobe"
    /// The longest a job may run before ffmpeg is stopped and it fails with `JobTimeout`
    /// (`MEDIAQUEUE_JOB_TIMEOUT_SECONDS`, default 6 h).
    public var jobTimeoutSeconds = 6 * 3600
    /// On SIGTERM, how long running jobs may go on before they are stopped and handed back to
    /// their queues (`MEDIAQUEUE_DRAIN_TIMEOUT_SECONDS`).
    public var drainTimeoutSeconds = 30
    /// Largest `Input.Url` download in bytes (`MEDIAQUEUE_INPUT_URL_MAX_BYTES`, default 2 GiB).
    public var inputURLMaxBytes = 2 << 30
    /// Longest an `Input.Url` download may take (`MEDIAQUEUE_INPUT_URL_TIMEOUT_SECONDS`, default 600).
    public var inputURLTimeoutSeconds = 600
    /// API key pairs (`MEDIAQUEUE_CREDENTIALS`: `SecretId:SecretKey:bucket1,bucket2;…`).
    public var credentials = ""
    /// Serve unsigned API requests (`MEDIAQUEUE_ANONYMOUS=1`); off by default.
    public var anonymous = false
    /// Host suffixes naming a bucket as `<bucket>.<suffix>` (`MEDIAQUEUE_HOST_SUFFIXES`, comma-separated).
    public var hostSuffixes: [String] = []
    /// Largest submission or API request body in bytes (`MEDIAQUEUE_MAX_BODY_BYTES`), for the API and the intake alike.
    public var maxBodyBytes = 1 << 20
    /// Largest object one `PUT /<key>` may upload (`MEDIAQUEUE_MAX_OBJECT_BYTES`; COS's simple upload limit).
    public var maxObjectBytes = 5 << 30
    /// How long an upload that may start workflow runs is given before a crash is assumed and
    /// its runs are started from its record (`MEDIAQUEUE_WORKFLOW_ARRIVAL_GRACE_SECONDS`): longer
    /// than the slowest upload's publishing.
    public var workflowArrivalGraceSeconds = 300
    /// The most `Operation`s one submission may hold (`MEDIAQUEUE_MAX_OPERATIONS`).
    public var maxOperations = 100
    /// The longest `UserData` in bytes (`MEDIAQUEUE_MAX_USER_DATA_BYTES`, CI's 1,024).
    public var maxUserDataBytes = 1024
    /// The most job ids one `GET /jobs/<ids>` may name (`MEDIAQUEUE_MAX_JOB_IDS`).
    public var maxJobIDs = 100
    /// The longest object key in a submission, in bytes (`MEDIAQUEUE_MAX_OBJECT_KEY_BYTES`; COS's 850 at most).
    public var maxObjectKeyBytes = 850
    /// PEM files of the API's certificate chain and private key (`MEDIAQUEUE_TLS_CERTIFICATE_FILE`,
    /// `MEDIAQUEUE_TLS_KEY_FILE`): with both, the API serves HTTPS only.
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    /// The most header fields one API request may carry (`MEDIAQUEUE_MAX_HEADER_COUNT`).
    public var maxHeaderCount = 100
    /// The most bytes of header names and values one API request may carry (`MEDIAQUEUE_MAX_HEADER_BYTES`).
    public var maxHeaderBytes = 16 * 1024
    /// How long an API connection may stay idle before it is closed (`MEDIAQUEUE_API_IDLE_TIMEOUT_SECONDS`).
    public var apiIdleTimeoutSeconds = 60
    /// The most API connections held at once (`MEDIAQUEUE_API_MAX_CONNECTIONS`); nil for half the
    /// process's open-file limit.
    public var apiMaxConnections: Int?
    /// What `serve` runs (`MEDIAQUEUE_ROLES`: any of intake, dispatch, relay, api).
    public var roles: Set<Role> = Set(Role.allCases)
    /// `trace` … `critical` (`MEDIAQUEUE_LOG_LEVEL`).
    public var logLevel = "info"
    /// Callback retry delays (`MEDIAQUEUE_CALLBACK_RETRY_SCHEDULE`, alias `…_RETRY_DELAYS`:
    /// `0,5s,30s,2m,…`; a bare number is seconds); nil for `RetrySchedule.standard`.
    public var callbackRetrySchedule: [Duration]?
    /// CIDRs exempt from the SSRF guard (`MEDIAQUEUE_CALLBACK_ALLOWED_NETWORKS`, e.g. `127.0.0.0/8`).
    public var callbackAllowedNetworks: [String] = []
    /// CIDRs `Input.Url` downloads may reach despite the SSRF guard
    /// (`MEDIAQUEUE_INPUT_URL_ALLOWED_NETWORKS`): apart from the callbacks', since a tenant's
    /// job picks its input URL while the operator picks the callback receivers it exempts.
    public var inputURLAllowedNetworks: [String] = []
    /// HTTP callback timeouts (`MEDIAQUEUE_CALLBACK_CONNECT_TIMEOUT`, `MEDIAQUEUE_CALLBACK_TIMEOUT`).
    public var callbackConnectTimeout: Duration = .seconds(10)
    public var callbackTimeout: Duration = .seconds(30)
    /// HTTP callback requests in flight per `host:port` (`MEDIAQUEUE_CALLBACK_MAX_PER_ENDPOINT`).
    public var callbackMaxPerEndpoint = 8
    /// How soon a rotated signing secret is used by a running node (`MEDIAQUEUE_CALLBACK_SECRET_REFRESH`).
    public var callbackSecretRefresh: Duration = .seconds(30)
    /// PEM file of the CAs that HTTPS callback receivers' certificates must chain to
    /// (`MEDIAQUEUE_CALLBACK_CA_FILE`); nil for the system's CAs. Certificates are always verified.
    public var callbackCAFile: String?
    /// Whether a TDMQ callback's queue or exchange must be named after its bucket
    /// (`<bucket>.…`; `MEDIAQUEUE_CALLBACK_MQ_BUCKET_PREFIX`): for a service that several tenants
    /// share, whose callbacks all go to its one broker. Off by default.
    public var callbackMqBucketPrefix = false
    /// `MEDIAQUEUE_` variables of the environment that name no setting (a misspelt one does
    /// nothing); `serve` warns of them.
    public var unknownVariables: [String] = []

    public enum Role: String, Sendable, Hashable, CaseIterable, Codable {
        case intake, dispatch, relay, api
    }

    public init() {}

    public var resolvedStorageDir: String { storageDir ?? dataDir + "/storage" }
    public var databasePath: String { dataDir + "/mediaqueue.sqlite" }

    /// Loads a configuration: defaults, then `file` (JSON with the keys above), then `environment`,
    /// then `roles` (`serve --role`, a comma-separated list), and checks the result.
    public static func load(
        file: String?, environment: [String: String] = ProcessInfo.processInfo.environment, roles: String? = nil
    ) throws -> MediaQueueConfiguration {
        var configuration = MediaQueueConfiguration()
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError("\(file): cannot read the configuration file")
            }
            let parsed: Any
            do {
                parsed = try JSONSerialization.jsonObject(with: data)
            } catch {
                throw ConfigurationError("\(file): the configuration file is not valid JSON (\((error as NSError).userInfo[NSDebugDescriptionErrorKey] ?? error))")
            }
            guard let object = parsed as? [String: Any] else {
                throw ConfigurationError("\(file): the configuration file must hold a JSON object")
            }
            _ = try configuration.apply(object.mapValues { "\($0)" }.merging(Self.nested(object)) { $1 }, source: file)
        }
        let variables = environment.filter { name, _ in
            name.hasPrefix("MEDIAQUEUE_") && !notSettings.contains { name.hasPrefix("MEDIAQUEUE_" + $0) }
        }
        let unknown = try configuration.apply(variables.reduce(into: [:]) { $0[Self.keyName($1.key)] = $1.value }, source: "environment")
        configuration.unknownVariables = variables.keys.filter { unknown.contains(Self.keyName($0)) }.sorted()
        if let roles { _ = try configuration.apply(["roles": roles], source: "--role") }
        try configuration.validate()
        return configuration
    }

    /// A broker connection's settings: `url`, the configured CA file, and `mediaqueue <name>` as
    /// the name the broker shows for it.
    public func amqpConfiguration(url: String, name: String) throws -> AMQPConfiguration {
        var amqp = try AMQPConfiguration(url: url)
        amqp.caCertificatePath = amqpCACertificate
        amqp.connectionName = "mediaqueue \(name)"
        return amqp
    }

    /// `MEDIAQUEUE_` variables that are not settings: the tests', scripts' and fault points'.
    static let notSettings = ["TEST_", "SKIP_", "COMPOSE_", "CHAOS_", "FUZZ_", "FAULT_POINT", "RABBITMQ_DIR"]

    /// `MEDIAQUEUE_AMQP_URL` → `amqpURL`: the file keys are the environment names in camel case.
    static func keyName(_ variable: String) -> String {
        let words = variable.dropFirst("MEDIAQUEUE_".count).lowercased().split(separator: "_")
        let camel = words.enumerated().map { index, word in
            index == 0 ? String(word) : word.prefix(1).uppercased() + word.dropFirst()
        }.joined()
        return camel.replacingOccurrences(of: "Url", with: "URL")
    }

    /// JSON objects (like `mqRegions`) flattened to the environment's `key=value,…` form.
    static func nested(_ object: [String: Any]) -> [String: String] {
        object.compactMapValues { value in
            (value as? [String: Any]).map { $0.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",") }
                ?? (value as? [Any]).map { $0.map { "\($0)" }.joined(separator: ",") }
        }
    }

    /// Applies `values`; returns the keys that name no setting (only the environment may hold
    /// such: a file's unknown key is refused).
    @discardableResult
    mutating func apply(_ values: [String: String], source: String) throws -> [String] {
        var unknown: [String] = []
        func int(_ key: String, _ value: String) throws -> Int {
            guard let number = Int(value.trimmingCharacters(in: .whitespaces)) else {
                throw ConfigurationError("\(source): \(key) must be a whole number, not '\(value)'")
            }
            return number
        }
        for (key, value) in values {
            if try applyStorage(key, value, source: source) { continue }
            switch key {
            case "amqpURL": amqpURL = value
            case "amqpCaFile", "amqpCACertificate": amqpCACertificate = value.isEmpty ? nil : value
            case "mqRegions":
                mqRegions = [:]
                for (index, pair) in value.split(separator: ",").enumerated() {
                    let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    // Not echoed: an entry is a URL, maybe with a password.
                    guard parts.count == 2 else { throw ConfigurationError("\(source): mqRegions entries look like sh=amqp://host/; entry \(index + 1) does not") }
                    mqRegions[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
                }
            case "dataDir": dataDir = value.isEmpty ? Self().dataDir : value
            case "databaseURL": databaseURL = value.isEmpty ? nil : value
            case "databaseMaxConnections": databaseMaxConnections = try int(key, value)
            case "storageDir": storageDir = value.isEmpty ? nil : value
            case "bucket": bucket = value
            case "httpAddress": httpAddress = value
            case "operationsAddress": operationsAddress = value.isEmpty ? nil : value
            case "intakeQueue": intakeQueue = value
            case "deadLetterQueue": deadLetterQueue = value
            case "intakeQueueType":
                let type = value.trimmingCharacters(in: .whitespaces).lowercased()
                guard ["classic", "quorum"].contains(type) else {
                    throw ConfigurationError("\(source): intakeQueueType must be classic or quorum, not '\(value)'")
                }
                intakeQueueType = type
            case "eventsExchange": eventsExchange = value
            case "eventsFormat": eventsFormat = value.uppercased()
            case "queueMaxConcurrent": queueMaxConcurrent = try int(key, value)
            case "queueMaxSize": queueMaxSize = try int(key, value)
            case "maxRunningJobs": maxRunningJobs = try int(key, value)
            case "region": region = value
            case "utcOffset": utcOffset = value
            case "leaseSeconds": leaseSeconds = try int(key, value)
            case "maxJobAttempts": maxJobAttempts = try int(key, value)
            case "retentionDays":
                guard let days = Double(value.trimmingCharacters(in: .whitespaces)), days.isFinite, days == 0 || days * 86_400 >= 1 else {
                    throw ConfigurationError("\(source): retentionDays must be 0 (keep) or at least a second's worth of days, not '\(value)'")
                }
                retentionDays = days
            case "retentionSweepSeconds": retentionSweepSeconds = try int(key, value)
            case "relayLeaseSeconds": relayLeaseSeconds = try int(key, value)
            case "consoleAdminToken": consoleAdminToken = value
            case "metricsToken": metricsToken = value
            case "consoleSessionKey": consoleSessionKey = value
            case "progressIntervalSeconds": progressIntervalSeconds = try int(key, value)
            case "metrics": metrics = try Self.bool(key, value, source: source)
            case "enableNoop": enableNoop = try Self.bool(key, value, source: source)
            case "ffmpeg", "ffmpegPath": ffmpegPath = value
            case "ffprobe", "ffprobePath": ffprobePath = value
            case "jobTimeoutSeconds": jobTimeoutSeconds = try int(key, value)
            case "drainTimeoutSeconds": drainTimeoutSeconds = try int(key, value)
            case "inputUrlMaxBytes", "inputURLMaxBytes": inputURLMaxBytes = try int(key, value)
            case "inputUrlTimeoutSeconds", "inputURLTimeoutSeconds": inputURLTimeoutSeconds = try int(key, value)
            case "roles":
                roles = []
                for name in value.split(separator: ",") {
                    guard let role = Role(rawValue: name.trimmingCharacters(in: .whitespaces).lowercased()) else {
                        throw ConfigurationError("\(source): unknown role '\(name)' (roles: intake, dispatch, relay, api)")
                    }
                    roles.insert(role)
                }
            case "logLevel": logLevel = value.lowercased()
            case "credentials": credentials = value
            case "anonymous": anonymous = try Self.bool(key, value, source: source)
            case "hostSuffixes": hostSuffixes = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            case "maxBodyBytes": maxBodyBytes = try int(key, value)
            case "maxObjectBytes": maxObjectBytes = try int(key, value)
            case "workflowArrivalGraceSeconds": workflowArrivalGraceSeconds = try int(key, value)
            case "maxOperations": maxOperations = try int(key, value)
            case "maxUserDataBytes": maxUserDataBytes = try int(key, value)
            case "maxJobIds", "maxJobIDs": maxJobIDs = try int(key, value)
            case "maxObjectKeyBytes": maxObjectKeyBytes = try int(key, value)
            case "maxHeaderCount": maxHeaderCount = try int(key, value)
            case "tlsCertificateFile": tlsCertificateFile = value.isEmpty ? nil : value
            case "tlsKeyFile": tlsKeyFile = value.isEmpty ? nil : value
            case "maxHeaderBytes": maxHeaderBytes = try int(key, value)
            case "apiIdleTimeoutSeconds": apiIdleTimeoutSeconds = try int(key, value)
            case "apiMaxConnections": apiMaxConnections = try int(key, value)
            default:
                if try applyCallbackSetting(key, value, source: source) { continue }
                if source != "environment" { throw ConfigurationError("\(source): unknown key '\(key)'") }
                unknown.append(key)
            }
        }
        return unknown
    }

    func validate() throws {
        try BucketName.validate(bucket)
        guard utcOffsetSeconds != nil else { throw ConfigurationError("utcOffset must look like +0800, not '\(utcOffset)'") }
        guard ["XML", "JSON"].contains(eventsFormat) else { throw ConfigurationError("eventsFormat must be XML or JSON") }
        guard MediaQueue.maxConcurrentRange.contains(queueMaxConcurrent), MediaQueue.maxSizeRange.contains(queueMaxSize) else {
            throw ConfigurationError(
                "queueMaxConcurrent must be from 1 to \(MediaQueue.maxConcurrentRange.upperBound) and queueMaxSize from 1 to \(MediaQueue.maxSizeRange.upperBound)"
            )
        }
        guard maxRunningJobs > 0, leaseSeconds >= 5, relayLeaseSeconds >= 2 else {
            throw ConfigurationError("maxRunningJobs must be positive, leaseSeconds at least 5, relayLeaseSeconds at least 2")
        }
        guard jobTimeoutSeconds > 0 else { throw ConfigurationError("jobTimeoutSeconds must be positive") }
        guard workflowArrivalGraceSeconds > 0 else { throw ConfigurationError("workflowArrivalGraceSeconds must be positive") }
        guard drainTimeoutSeconds >= 0 else { throw ConfigurationError("drainTimeoutSeconds must be 0 or more") }
        guard maxJobAttempts >= 1 else { throw ConfigurationError("maxJobAttempts must be 1 or more") }
        guard retentionSweepSeconds >= 1 else { throw ConfigurationError("retentionSweepSeconds must be 1 or more") }
        guard apiIdleTimeoutSeconds >= 1 else { throw ConfigurationError("apiIdleTimeoutSeconds must be 1 or more") }
        guard (apiMaxConnections ?? 1) >= 1 else { throw ConfigurationError("apiMaxConnections must be 1 or more") }
        guard progressIntervalSeconds > 0 else { throw ConfigurationError("progressIntervalSeconds must be positive") }
        guard maxBodyBytes > 0, maxObjectBytes > 0, maxOperations > 0, maxUserDataBytes > 0, maxJobIDs > 0, maxHeaderCount > 0, maxHeaderBytes > 0 else {
            throw ConfigurationError("maxBodyBytes, maxObjectBytes, maxOperations, maxUserDataBytes, maxJobIds, maxHeaderCount and maxHeaderBytes must be positive")
        }
        guard (tlsCertificateFile == nil) == (tlsKeyFile == nil) else {
            throw ConfigurationError("tlsCertificateFile and tlsKeyFile go together: set both for HTTPS, or neither")
        }
        guard (1...850).contains(maxObjectKeyBytes) else { throw ConfigurationError("maxObjectKeyBytes must be 1 to 850 (COS's limit)") }
        guard inputURLMaxBytes > 0, inputURLTimeoutSeconds > 0 else {
            throw ConfigurationError("inputUrlMaxBytes and inputUrlTimeoutSeconds must be positive")
        }
        guard !roles.isEmpty else { throw ConfigurationError("roles must name at least one of intake, dispatch, relay, api") }
        guard databaseMaxConnections >= 1 else { throw ConfigurationError("databaseMaxConnections must be 1 or more") }
        guard Self.logLevels.contains(logLevel) else {
            throw ConfigurationError("logLevel must be one of \(Self.logLevels.joined(separator: ", ")), not '\(logLevel)'")
        }
        try validateCallbackSettings()
        try validateStorage()
    }

    /// Checks what a serving node of these roles runs: ffmpeg and ffprobe for the dispatch role.
    /// The one-shot commands run neither, so they do not need them.
    public func checkToolsForServing() throws {
        guard roles.contains(.dispatch) else { return }
        // Every job of the node would fail once it ran; better not to start.
        for (name, path) in [("ffmpeg", ffmpegPath), ("ffprobe", ffprobePath)] where !FileManager.default.isExecutableFile(atPath: path) {
            throw ConfigurationError("\(name) (\(path)) is not an executable file; the dispatch role runs it for every job")
        }
    }

    /// A yes-or-no setting: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, in any case. Anything
    /// else is refused, where it used to count as the default (`MEDIAQUEUE_METRICS=disabled` left
    /// metrics on).
    static func bool(_ key: String, _ value: String, source: String) throws -> Bool {
        switch value.trimmingCharacters(in: .whitespaces).lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigurationError("\(source): \(key) must be true or false, not '\(value)'")
        }
    }

    /// swift-log's levels, as `logLevel` names them.
    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    var utcOffsetSeconds: Int? {
        let digits = utcOffset.dropFirst().filter { $0 != ":" }
        guard let sign = utcOffset.first, sign == "+" || sign == "-", digits.count == 4, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = Int(digits), value / 100 <= 14, value % 100 < 60
        else { return nil }
        return (value / 100 * 3600 + value % 100 * 60) * (sign == "-" ? -1 : 1)
    }

    /// How documents show times and the region.
    public var formatting: CIFormatting {
        CIFormatting(times: CITimeFormat(utcOffsetSeconds: utcOffsetSeconds ?? 0), region: region, templateNames: SystemTemplates.names)
    }

    /// Settings of a bucket's `queue-1` when it is first created.
    public func defaultQueueTemplate(now: Timestamp) -> MediaQueue {
        let rule = eventsExchange.isEmpty
            ? NotifyConfig()
            : NotifyConfig.topic(eventsExchange, format: eventsFormat == "JSON" ? .json : .xml)
        return MediaQueue(
            bucket: bucket, name: MediaQueue.defaultName, maxConcurrent: queueMaxConcurrent, maxSize: queueMaxSize,
            notifyConfig: rule, createTime: now
        )
    }
}

/// A configuration value that cannot be used; the message names the key and the source.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
