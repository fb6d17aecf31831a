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
    /// Handles made so far, by what tells their series apart: looked up once per batch of jobs
    /// under one lock, by keys that cost no allocation (a queue's bucket follows from its id).
    private let handles = Mutex(Handles())
    /// The last reconnect count reported per connection, so the counter only moves forward.
    private let reportedReconnects = Mutex<[String: UInt64]>([:])
    /// The queue gauges the last collection set: one whose queue (or level) is gone since is set
    /// to 0, or it would show its last count until the process restarts (the exporter keeps
    /// every series it has seen).
    private let queueGauges = Mutex<Set<QueueGauge>>([])

    private struct QueueGauge: Hashable {
        var name: String
        var labels: [Label]
    }

    private struct Label: Hashable {
        var name: String
        var value: String
    }

    private struct Handles {
        var submitted: [QueueTag: CoreMetrics.Counter] = [:]
        var finished: [QueueTag: [JobState: CoreMetrics.Counter]] = [:]
        var wait: [QueueID: CoreMetrics.Timer] = [:]
        var run: [String: CoreMetrics.Timer] = [:]
        var store: [String: CoreMetrics.Timer] = [:]
        var callbacks: [CallbackSeries: CoreMetrics.Counter] = [:]
    }

    private struct CallbackSeries: Hashable {
        var name: String
        var channel: NotifyConfig.Channel
    }

    private struct QueueTag: Hashable {
        var queue: QueueID
        var tag: String
    }

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
    }

    /// Measures nothing.
    public static let disabled = EngineMetrics()

    // MARK: Jobs

    func jobsSubmitted(_ jobs: [Job]) {
        guard !jobs.isEmpty else { return }
        handles.withLock { handles in
            for job in jobs {
                let key = QueueTag(queue: job.queueID, tag: job.tag)
                let counter = handles.submitted[key] ?? make(&handles.submitted, key) {
                    CoreMetrics.Counter(label: Self.jobsSubmitted, dimensions: queueLabels(job) + [("tag", job.tag)], factory: factory)
                }
                counter.increment()
            }
        }
    }

    /// Jobs a claim at `claimedAt` just took; the wait of those it started for the first time is
    /// from submission to start. A job claimed again (handed back at a shutdown, or its lease
    /// over) keeps its first start, and its wait was recorded then.
    func jobsStarted(_ jobs: [Job], claimedAt: Timestamp) {
        guard !jobs.isEmpty else { return }
        handles.withLock { handles in
            for job in jobs {
                guard let start = job.startTime, start == claimedAt else { continue }
                let timer = handles.wait[job.queueID] ?? make(&handles.wait, job.queueID) {
                    CoreMetrics.Timer(label: Self.jobWait, dimensions: queueLabels(job), factory: factory)
                }
                timer.recordMilliseconds(max(0, start.milliseconds - job.creationTime.milliseconds))
            }
        }
    }

    /// Jobs that reached a terminal state.
    func jobsEnded(_ jobs: [Job]) {
        guard !jobs.isEmpty else { return }
        handles.withLock { handles in
            for job in jobs {
                let key = QueueTag(queue: job.queueID, tag: job.tag)
                let counter = handles.finished[key]?[job.state] ?? {
                    let counter = CoreMetrics.Counter(
                        label: Self.jobsFinished, dimensions: queueLabels(job) + [("tag", job.tag), ("state", job.state.rawValue)], factory: factory
                    )
                    handles.finished[key, default: [:]][job.state] = counter
                    return counter
                }()
                counter.increment()
                if let start = job.startTime, let end = job.endTime {
                    let timer = handles.run[job.tag] ?? make(&handles.run, job.tag) {
                        CoreMetrics.Timer(label: Self.jobRun, dimensions: [("tag", job.tag)], factory: factory)
                    }
                    timer.recordMilliseconds(max(0, end.milliseconds - start.milliseconds))
                }
            }
        }
    }

    private func queueLabels(_ job: Job) -> [(String, String)] {
        [("bucket", job.bucket), ("queue", job.queueID.rawValue)]
    }

    /// Makes a handle and keeps it under `key`.
    private func make<Key: Hashable, Handle>(_ cache: inout [Key: Handle], _ key: Key, _ handle: () -> Handle) -> Handle {
        let made = handle()
        cache[key] = made
        return made
    }

    // MARK: Store and callbacks

    func storeTransaction(_ operation: String, _ duration: Duration) {
        let timer = handles.withLock { handles in
            handles.store[operation] ?? make(&handles.store, operation) {
                CoreMetrics.Timer(label: Self.storeTransaction, dimensions: [("operation", operation)], factory: factory)
            }
        }
        timer.recordNanoseconds(duration.nanoseconds)
    }

    /// One attempt to deliver a callback; `failed` when it did not arrive, `dead` when it was the
    /// last attempt.
    /// An attempt made, whether or not the store could record it.
    func callbackAttempt(_ channel: NotifyConfig.Channel, failed: Bool = false) {
        callbackCounter(Self.callbackAttempts, channel).increment()
        if failed { callbackCounter(Self.callbackFailures, channel).increment() }
    }

    /// A delivery the store marked dead after its last attempt.
    func callbackDied(_ channel: NotifyConfig.Channel) {
        callbackCounter(Self.callbackDead, channel).increment()
    }

    private func callbackCounter(_ name: String, _ channel: NotifyConfig.Channel) -> CoreMetrics.Counter {
        let key = CallbackSeries(name: name, channel: channel)
        return handles.withLock { handles in
            handles.callbacks[key] ?? make(&handles.callbacks, key) {
                CoreMetrics.Counter(label: name, dimensions: [("channel", channel.metricLabel)], factory: factory)
            }
        }
    }

    // MARK: Collected on demand

    /// Reads the gauges from `store` and the connections' reconnect counts; call before export.
    public func collect(from store: any JobStore, connections: [(name: String, connection: AMQPConnection)]) async throws {
        var set: Set<QueueGauge> = []
        func record(_ name: String, _ labels: [(String, String)], _ value: Int) {
            gauge(name, labels).record(value)
            set.insert(QueueGauge(name: name, labels: labels.map { Label(name: $0.0, value: $0.1) }))
        }
        for queue in try await store.queueStatistics(bucket: nil) {
            let labels = [("bucket", queue.bucket), ("queue", queue.queueID.rawValue)]
            for (level, count) in queue.waitingByLevel.enumerated() {
                record(Self.jobsWaiting, labels + [("level", String(level))], count)
            }
            record(Self.jobsRunning, labels, queue.running)
        }
        let gone = queueGauges.withLock { previous in
            defer { previous = set }
            return previous.subtracting(set)
        }
        for series in gone { gauge(series.name, series.labels.map { ($0.name, $0.value) }).record(0) }
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
            // Made even at zero, so the series exists from the start.
            let counter = CoreMetrics.Counter(label: Self.amqpReconnects, dimensions: [("connection", name)], factory: factory)
            if reconnects > previous { counter.increment(by: reconnects - previous) }
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
