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
        subcommands: [Serve.self, Submit.self, Jobs.self, QueueCommand.self, Templates.self, CallbacksCommand.self]
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

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the service: intake, dispatcher, workers and callback relay.")

    @OptionGroup var options: GlobalOptions

    @Option(name: .long, help: "Comma-separated roles to run: intake, dispatch, relay, api (default: all).")
    var role: String?

    func run() async throws {
        var configuration = try options.load()
        if let role {
            try configuration.setRoles(role)
        }
        keepFreedHeapMemory()
        let logger = options.logger(configuration, oneShot: false)
        let application = try MediaQueueApplication(configuration: configuration, logger: logger)
        // Written straight to the file descriptor: scripts wait for this line on a pipe, where
        // print's buffer would hold it back.
        let line = "mediaqueue: consuming \(configuration.intakeQueue) on \(redacted(configuration.amqpURL)); data in \(configuration.dataDir)\n"
        FileHandle.standardOutput.write(Data(line.utf8))
        try await application.run { host, port in
            FileHandle.standardOutput.write(Data("mediaqueue: API listening on http://\(host):\(port)\n".utf8))
        }
    }
}

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Publish a CreateMediaJobs request to the intake queue and print the new JobIds.")

    @OptionGroup var options: GlobalOptions

    @Option(name: .long, help: "The request file (a CreateMediaJobs <Request>).")
    var request: String

    @Option(name: .long, help: "The bucket (default: the configured one).")
    var bucket: String?

    @Option(name: .long, help: "Seconds to wait for the service's answer.")
    var timeout: Int = 30

    func run() async throws {
        let configuration = try options.load()
        let logger = options.logger(configuration)
        let body = try [UInt8](Data(contentsOf: URL(fileURLWithPath: request)))
        let application = try MediaQueueApplication(configuration: configuration, logger: logger)
        let reply = try await application.submit(body, bucket: bucket, timeout: .seconds(timeout))
        switch reply {
        case .accepted(let response):
            for detail in response.all("JobsDetail") {
                print(detail.text("JobId") ?? "")
            }
        case .refused(let error):
            throw CommandError("refused: \(error.text("Code") ?? "") \(error.text("Message") ?? "")")
        }
    }
}

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Look at and cancel jobs.", subcommands: [Get.self, Cancel.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a job's JobsDetail (XML).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The JobId.") var id: String

        func run() async throws {
            let configuration = try options.load()
            let application = try MediaQueueApplication(configuration: configuration, logger: options.logger(configuration))
            guard let job = try await application.store.job(id: JobID(rawValue: id)) else {
                throw CommandError("no job \(id)")
            }
            print(XMLTree("Response", children: [job.jobsDetail(configuration.formatting)]).xmlString())
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a waiting job, or stop a running one.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The JobId.") var id: String

        func run() async throws {
            let configuration = try options.load()
            let application = try MediaQueueApplication(configuration: configuration, logger: options.logger(configuration))
            do {
                switch try await application.store.cancel(JobID(rawValue: id), now: SystemTimeSource().now) {
                case .cancelled: print("\(id): Cancel")
                case .stopping: print("\(id): Running, stopping")
                }
            } catch let error as CIError {
                throw CommandError("\(error.code): \(error.message)")
            }
        }
    }
}

struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queue", abstract: "List and configure media queues.", subcommands: [List.self, Create.self, Update.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the queues (CI's QueueList, XML).")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Only this bucket's queues.") var bucket: String?

        func run() async throws {
            let configuration = try options.load()
            let application = try MediaQueueApplication(configuration: configuration, logger: options.logger(configuration))
            _ = try await application.prepare()
            let queues = try await application.store.queues(bucket: bucket)
            print(XMLTree("Response", children: queues.map { $0.xml(times: configuration.formatting.times) }).xmlString())
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create another queue in a bucket (CI's API cannot; MediaQueue can).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The new queue's name.") var name: String
        @Option(name: .long, help: "The bucket (default: the configured one).") var bucket: String?
        @Option(name: .long, help: "Jobs of this queue running at once.") var maxConcurrent: Int?
        @Option(name: .long, help: "Unfinished jobs the queue may hold.") var maxSize: Int?
        @Option(name: .long, help: "A CI UpdateMediaQueue <Request> with the callback rule (NotifyConfig).") var request: String?

        func run() async throws {
            let configuration = try options.load()
            let application = try MediaQueueApplication(configuration: configuration, logger: options.logger(configuration))
            let bucket = self.bucket ?? configuration.bucket
            try cli { try BucketName.validate(bucket) }
            var queue = configuration.defaultQueueTemplate(now: SystemTimeSource().now)
            queue.bucket = bucket
            queue.name = name
            if let maxConcurrent { queue.maxConcurrent = try positive(maxConcurrent, "--max-concurrent") }
            if let maxSize { queue.maxSize = try positive(maxSize, "--max-size") }
            if let request {
                let update = try cli { try QueueUpdateRequest.parse([UInt8](Data(contentsOf: URL(fileURLWithPath: request)))) }
                if let state = update.state { queue.state = state }
                if let rule = update.notifyConfig {
                    try cli { try configuration.checkCallbackRule(rule) }
                    queue.notifyConfig = rule
                }
            }
            try await cliAsync { try await application.store.createQueue(queue) }
            print(XMLTree("Response", children: [queue.xml("Queue", times: configuration.formatting.times)]).xmlString())
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a queue: a CI UpdateMediaQueue <Request> (Name, State, NotifyConfig) and/or its limits."
        )
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The QueueId, or the queue's name in the configured bucket (e.g. queue-1).") var queue: String
        @Option(name: .long, help: "The request file.") var request: String?
        @Option(name: .long, help: "Jobs of this queue running at once.") var maxConcurrent: Int?
        @Option(name: .long, help: "Unfinished jobs the queue may hold.") var maxSize: Int?
        @Option(name: .long, help: "Active or Paused.") var state: String?

        func run() async throws {
            let configuration = try options.load()
            let application = try MediaQueueApplication(configuration: configuration, logger: options.logger(configuration))
            _ = try await application.prepare()
            var target = try await findQueue(queue, application)
            if let request {
                let update = try cli { try QueueUpdateRequest.parse([UInt8](Data(contentsOf: URL(fileURLWithPath: request)))) }
                if let name = update.name { target.name = name }
                if let state = update.state { target.state = state }
                if let notifyConfig = update.notifyConfig {
                    try cli { try configuration.checkCallbackRule(notifyConfig) }
                    target.notifyConfig = notifyConfig
                }
            }
            if let state {
                guard let value = MediaQueue.State(rawValue: state.prefix(1).uppercased() + state.dropFirst().lowercased()) else {
                    throw CommandError("--state must be Active or Paused")
                }
                target.state = value
            }
            if let maxConcurrent { target.maxConcurrent = try positive(maxConcurrent, "--max-concurrent") }
            if let maxSize { target.maxSize = try positive(maxSize, "--max-size") }
            target.updateTime = SystemTimeSource().now
            try await cliAsync { try await application.store.updateQueue(target) }
            print(XMLTree("Response", children: [target.xml("Queue", times: configuration.formatting.times)]).xmlString())
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a queue that holds no unfinished job.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The QueueId, or the queue's name in the configured bucket.") var queue: String

        func run() async throws {
            let configuration = try options.load()
            let application = try MediaQueueApplication(configuration: configuration, logger: options.logger(configuration))
            let target = try await findQueue(queue, application)
            try await cliAsync { try await application.store.deleteQueue(id: target.id) }
            print("deleted \(target.id) (\(target.name))")
        }
    }
}

/// The queue with this id, or with this name in the configured bucket.
func findQueue(_ idOrName: String, _ application: MediaQueueApplication) async throws -> MediaQueue {
    let all = try await application.store.queues(bucket: nil)
    guard let queue = all.first(where: { $0.id.rawValue == idOrName })
        ?? all.first(where: { $0.name == idOrName && $0.bucket == application.configuration.bucket })
    else {
        throw CommandError("no queue \(idOrName)")
    }
    return queue
}

func positive(_ value: Int, _ option: String) throws -> Int {
    guard value > 0 else { throw CommandError("\(option) must be at least 1") }
    return value
}

/// Runs `body`, turning a CI error into a one-line command error.
func cli<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as CIError {
        throw CommandError("\(error.code): \(error.message)")
    }
}

func cliAsync<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as CIError {
        throw CommandError("\(error.code): \(error.message)")
    }
}

struct Templates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the built-in media templates.", subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the templates Operation.TemplateId may name.")
        @Flag(name: .long, help: "Print CI's DescribeMediaTemplates XML instead of a table.") var xml = false

        func run() {
            if xml {
                print(MediaQueueApplication.templateList.xmlString())
                return
            }
            for row in MediaQueueApplication.templateRows {
                print([row.id, row.tag.padding(toLength: 9, withPad: " ", startingAt: 0), row.name.padding(toLength: 16, withPad: " ", startingAt: 0), row.summary].joined(separator: "  "))
            }
        }
    }
}

/// The URL without its password, for printing.
func redacted(_ url: String) -> String {
    guard let at = url.firstIndex(of: "@"), let scheme = url.range(of: "://") else { return url }
    let credentials = url[scheme.upperBound..<at]
    guard let colon = credentials.firstIndex(of: ":") else { return url }
    return url.replacingCharacters(in: colon..<at, with: ":***")
}

/// A failure to report in one line, without the usage text that `ValidationError` adds.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: callbacks

struct CallbacksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callbacks",
        abstract: "Dead callback deliveries and signing secrets.",
        subcommands: [Dead.self, Redrive.self, Secret.self]
    )

    struct Dead: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List deliveries that used up their attempts: event id, job id, target, attempts, last error.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "List at most this many.") var limit: Int = 1000

        func run() async throws {
            let configuration = try options.load()
            let application = try MediaQueueApplication(configuration: configuration, logger: options.logger(configuration))
            let dead = try await application.store.deadOutbox(limit: limit)
            if dead.isEmpty {
                print("no dead deliveries")
                return
            }
            print(["EVENT", "JOB", "TARGET", "ATTEMPTS", "LAST ERROR"].joined(separator: "\t"))
            for entry in dead {
                let target: String
                switch entry.target {
                case .url(let url): target = url
                case .mq(let mode, let name, let region): target = "tdmq:\(mode.rawValue.lowercased())/\(region)/\(name)"
                }
                let error = (entry.lastError ?? "").replacingNewlines
                print([entry.id, entry.jobID.rawValue, target, String(entry.attempts), error].joined(separator: "\t"))
            }
        }
    }

    struct Redrive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make every dead delivery due again, with a fresh set of attempts.")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let configuration = try options.load()
            let application = try MediaQueueApplication(configuration: configuration, logger: options.logger(configuration))
            let count = try await application.store.redriveDead(now: SystemTimeSource().now)
            print("\(count) dead deliver\(count == 1 ? "y" : "ies") due again")
        }
    }

    struct Secret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a bucket's secret for verifying callback signatures (created if it has none).")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "The bucket (default: the configured one).") var bucket: String?

        func run() async throws {
            let configuration = try options.load()
            let application = try MediaQueueApplication(configuration: configuration, logger: options.logger(configuration))
            print(try await application.store.webhookSecret(bucket: bucket ?? configuration.bucket))
        }
    }
}

extension String {
    var replacingNewlines: String {
        String(map { $0 == "\n" || $0 == "\r" || $0 == "\t" ? " " : $0 })
    }
}

/// A long-running server allocates and frees batches of rows and messages all the time; with
/// glibc's defaults it gives the top of the heap back to the kernel after each burst and faults
/// it in again for the next (`sysmalloc` and page faults were 5-10 % of the relay's profile).
/// Keeping up to 32 MiB of freed memory, and growing the heap 8 MiB at a time, stops that.
private func keepFreedHeapMemory() {
    #if os(Linux)
    _ = glibcMallopt(glibcTrimThreshold, 32 << 20)
    _ = glibcMallopt(glibcTopPad, 8 << 20)
    #endif
}

#if os(Linux)
// glibc's <malloc.h> is not part of Swift's Glibc module; these are its stable ABI.
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
private let glibcTrimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
private let glibcTopPad: Int32 = -2  // M_TOP_PAD
#endif
