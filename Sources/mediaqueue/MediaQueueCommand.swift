import ArgumentParser
import Foundation
import Logging
import MediaQueueApp
import MediaQueueCore
import MediaQueueXML

@main
struct MediaQueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mediaqueue",
        abstract: "A self-hosted media-processing job service that speaks Tencent Cloud Infinite's wire formats.",
        subcommands: [Serve.self, Submit.self, Jobs.self, QueueCommand.self, Templates.self, Objects.self, Workflows.self, CallbacksCommand.self]
    )
}

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "A JSON configuration file; MEDIAQUEUE_* environment variables override it.")
    var config: String?

    func load(roles: String? = nil) throws -> MediaQueueConfiguration {
        try MediaQueueConfiguration.load(file: config, roles: roles)
    }

    /// The configuration and the application on it, for a one-shot command. Its SQLite store must
    /// exist already unless the command `createsStore` (ones that set things up before a first
    /// `serve`); a read elsewhere would answer from a new, empty one.
    func open(createsStore: Bool = false) throws -> (MediaQueueConfiguration, MediaQueueApplication) {
        let configuration = try load()
        let application = try MediaQueueApplication(configuration: configuration, existingStore: !createsStore, logger: logger(configuration))
        return (configuration, application)
    }

    /// A logger at the configured level; one-shot commands (`submit`, `jobs`, `queue`) log only
    /// warnings and worse unless the level is set lower than `info`.
    func logger(_ configuration: MediaQueueConfiguration, oneShot: Bool = true) -> Logger {
        let configured = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let level = oneShot && configured == .info ? Logger.Level.warning : configured
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "mediaqueue")
    }
}

/// `--bucket`, checked as the API checks bucket names: the storage folder names its buckets'
/// folders by them, so a name like `..` must not get through.
struct BucketOption: ParsableArguments {
    @Option(name: .long, help: "The bucket (default: the configured one).")
    var bucket: String?

    /// The bucket named, or the configured one.
    func name(_ configuration: MediaQueueConfiguration) throws -> String {
        try checked(bucket) ?? configuration.bucket
    }

    /// The bucket named, if one was.
    func checked(_ bucket: String?) throws -> String? {
        guard let bucket else { return nil }
        try cli { try BucketName.validate(bucket) }
        return bucket
    }
}
