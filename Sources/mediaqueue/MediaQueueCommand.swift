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

    func load() throws -> MediaQueueConfiguration {
        try MediaQueueConfiguration.load(file: config)
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
