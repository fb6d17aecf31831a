/// Every series the engine reports: its name, kind, help text and histogram buckets. Exporters
/// take help texts and buckets from here (Prometheus rejects series without help).
extension EngineMetrics {
    public struct Description: Sendable {
        public enum Kind: Sendable, Equatable {
            case counter, gauge
            /// Upper bounds of the buckets, in seconds.
            case histogram([Double])
        }

        public let name: String
        public let kind: Kind
        public let help: String
    }

    static let jobsSubmitted = "mediaqueue_jobs_submitted_total"
    static let jobsFinished = "mediaqueue_jobs_finished_total"
    static let jobsWaiting = "mediaqueue_jobs_waiting"
    static let jobsRunning = "mediaqueue_jobs_running"
    static let jobWait = "mediaqueue_job_wait_seconds"
    static let jobRun = "mediaqueue_job_run_seconds"
    static let outboxPending = "mediaqueue_outbox_pending"
    static let outboxDead = "mediaqueue_outbox_dead"
    static let callbackAttempts = "mediaqueue_callback_attempts_total"
    static let callbackFailures = "mediaqueue_callback_failures_total"
    static let callbackDead = "mediaqueue_callback_dead_total"
    static let amqpReconnects = "mediaqueue_amqp_reconnects_total"
    static let storeTransaction = "mediaqueue_store_transaction_seconds"

    public static let catalog: [Description] = [
        Description(name: jobsSubmitted, kind: .counter, help: "Jobs stored by this node, by bucket, queue and tag."),
        Description(
            name: jobsFinished, kind: .counter,
            help: "Jobs that reached a terminal state on this node, by bucket, queue, tag and state (Success, Failed, Cancel)."
        ),
        Description(name: jobsWaiting, kind: .gauge, help: "Jobs waiting to run (Submitted or Pause), by bucket, queue and JobLevel; the same on every node."),
        Description(name: jobsRunning, kind: .gauge, help: "Jobs running, by bucket and queue, on all nodes together."),
        Description(
            name: jobWait, kind: .histogram([0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600]),
            help: "Time from a job's submission to its start, by bucket and queue."
        ),
        Description(
            name: jobRun, kind: .histogram([0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600]),
            help: "Time from a job's start to its end, by tag."
        ),
        Description(name: outboxPending, kind: .gauge, help: "Callback deliveries waiting for a first attempt or a retry, by channel (url, tdmq)."),
        Description(name: outboxDead, kind: .gauge, help: "Callback deliveries that used up their attempts and wait for a redrive, by channel."),
        Description(name: callbackAttempts, kind: .counter, help: "Callback delivery attempts made by this node, by channel."),
        Description(name: callbackFailures, kind: .counter, help: "Callback delivery attempts that failed (retried later or dead), by channel."),
        Description(name: callbackDead, kind: .counter, help: "Callback deliveries that failed their last attempt on this node, by channel."),
        Description(name: amqpReconnects, kind: .counter, help: "Times a broker connection of this node was established again after it was lost."),
        Description(
            name: storeTransaction, kind: .histogram([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5]),
            help: "Duration of the store's transactions and reads, by operation."
        ),
    ]
}
