public import CoreMetrics
public import MediaQueueAMQP
public import MediaQueueCore
import Synchronization

/// What the engine measures, through swift-metrics on the factory the process chose (`serve`
/// exports them in Prometheus format at `/metrics`; tests may use any factory; the default
/// measures nothing).
///
/// Counters and histograms are recorded as things happen (by `MeteredJobStore` and the relays);
/// gauges of what the store holds are read when metrics are collected (`collect`), so every node
/// reports the same cluster-wide figures.
public final class EngineMetrics: Sendable {
    let factory: any MetricsFactory
    private let counters = Mutex<[Key: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[Key: CoreMetrics.Timer]>([:])
    /// The last reconnect count reported per connection, so the counter only moves forward.
    private let reportedReconnects = Mutex<[String: UInt64]>([:])

    private struct Key: Hashable {
        var name: String
        var labels: [String]
    }

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
    }

    /// Measures nothing.
    public static let disabled = EngineMetrics()

    // MARK: Jobs

    func jobsSubmitted(_ jobs: [Job]) {
        for job in jobs {
            counter(Self.jobsSubmitted, [("bucket", job.bucket), ("queue", job.queueID.rawValue), ("tag", job.tag)]).increment()
        }
    }

    /// Jobs that just started; their wait is from submission to start.
    func jobsStarted(_ jobs: [Job]) {
        for job in jobs {
            guard let start = job.startTime else { continue }
            timer(Self.jobWait, [("bucket", job.bucket), ("queue", job.queueID.rawValue)])
                .recordMilliseconds(max(0, start.milliseconds - job.creationTime.milliseconds))
        }
    }

    /// Jobs that reached a terminal state.
    func jobsEnded(_ jobs: [Job]) {
        for job in jobs {
            counter(Self.jobsFinished, [("bucket", job.bucket), ("queue", job.queueID.rawValue), ("tag", job.tag), ("state", job.state.rawValue)])
                .increment()
            if let start = job.startTime, let end = job.endTime {
                timer(Self.jobRun, [("tag", job.tag)]).recordMilliseconds(max(0, end.milliseconds - start.milliseconds))
            }
        }
    }

    // MARK: Store and callbacks

    func storeTransaction(_ operation: String, _ duration: Duration) {
        timer(Self.storeTransaction, [("operation", operation)]).recordNanoseconds(duration.nanoseconds)
    }

    /// One attempt to deliver a callback; `failed` when it did not arrive, `dead` when it was the
    /// last attempt.
    func callbackAttempt(_ channel: NotifyConfig.Channel, failed: Bool = false, dead: Bool = false) {
        let labels = [("channel", channel.metricLabel)]
        counter(Self.callbackAttempts, labels).increment()
        if failed { counter(Self.callbackFailures, labels).increment() }
        if dead { counter(Self.callbackDead, labels).increment() }
    }

    // MARK: Collected on demand

    /// Reads the gauges from `store` and the connections' reconnect counts; call before export.
    public func collect(from store: any JobStore, connections: [(name: String, connection: AMQPConnection)]) async throws {
        for queue in try await store.queueStatistics(bucket: nil) {
            let labels = [("bucket", queue.bucket), ("queue", queue.queueID.rawValue)]
            for (level, count) in queue.waitingByLevel.enumerated() {
                gauge(Self.jobsWaiting, labels + [("level", String(level))]).record(count)
            }
            gauge(Self.jobsRunning, labels).record(queue.running)
        }
        let outbox = try await store.outboxStatistics()
        for channel in [NotifyConfig.Channel.url, .tdmq] {
            gauge(Self.outboxPending, [("channel", channel.metricLabel)]).record(outbox.pending[channel] ?? 0)
            gauge(Self.outboxDead, [("channel", channel.metricLabel)]).record(outbox.dead[channel] ?? 0)
        }
        for (name, connection) in connections {
            let reconnects = connection.connectionCount > 1 ? connection.connectionCount - 1 : 0
            let previous = reportedReconnects.withLock { reported in
                defer { reported[name] = max(reported[name] ?? 0, reconnects) }
                return reported[name] ?? 0
            }
            // Created even at zero, so the series exists from the start.
            let counter = counter(Self.amqpReconnects, [("connection", name)])
            if reconnects > previous { counter.increment(by: reconnects - previous) }
        }
    }

    // MARK: Handles

    private func counter(_ name: String, _ labels: [(String, String)]) -> CoreMetrics.Counter {
        cached(counters, name, labels) { CoreMetrics.Counter(label: name, dimensions: labels, factory: factory) }
    }

    private func timer(_ name: String, _ labels: [(String, String)]) -> CoreMetrics.Timer {
        cached(timers, name, labels) { CoreMetrics.Timer(label: name, dimensions: labels, factory: factory) }
    }

    /// The handle of one series, made once: making one asks the factory, which looks it up under a lock.
    private func cached<Handle>(_ cache: borrowing Mutex<[Key: Handle]>, _ name: String, _ labels: [(String, String)], make: () -> Handle) -> Handle {
        let key = Key(name: name, labels: labels.flatMap { [$0.0, $0.1] })
        return cache.withLock { handles in
            if let handle = handles[key] { return handle }
            let handle = make()
            handles[key] = handle
            return handle
        }
    }

    /// Gauges are set only while collecting, so they are not cached.
    private func gauge(_ name: String, _ labels: [(String, String)]) -> CoreMetrics.Gauge {
        CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory)
    }
}

extension NotifyConfig.Channel {
    /// The `channel` label: `url` or `tdmq`.
    var metricLabel: String { self == .url ? "url" : "tdmq" }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
