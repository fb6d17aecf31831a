public import Logging

extension Logger {
    /// A logger whose records at `level` and above go to `observe`, for tests that wait for or
    /// count what a component logs (a retry, a failed connection).
    public static func observed(_ label: String, level: Logger.Level, _ observe: @escaping @Sendable (LogEvent) -> Void) -> Logger {
        var logger = Logger(label: label) { _ in ObservingLogHandler(observe: observe, logLevel: level) }
        logger.logLevel = level
        return logger
    }
}

/// Hands every record to a closure.
struct ObservingLogHandler: LogHandler {
    let observe: @Sendable (LogEvent) -> Void
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level

    init(observe: @escaping @Sendable (LogEvent) -> Void, logLevel: Logger.Level) {
        self.observe = observe
        self.logLevel = logLevel
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) { observe(event) }
}
