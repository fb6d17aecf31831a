import ArgumentParser
import Foundation
import Logging
import MediaQueueApp
import MediaQueueCore
import MediaQueueXML

struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queue", abstract: "List and configure media queues.", subcommands: [List.self, Create.self, Update.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the queues (CI's QueueList, XML).")
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "Only this bucket's queues.") var bucket: String?

        func validate() throws {
            if let bucket { try cli { try BucketName.validate(bucket) } }
        }

        func run() async throws {
            let (configuration, application) = try options.open()
            _ = try await application.prepare()
            let queues = try await application.store.queues(bucket: bucket)
            print(XMLTree("Response", children: queues.map { $0.xml(times: configuration.formatting.times) }).xmlString())
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create another queue in a bucket (CI's API cannot; MediaQueue can).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The new queue's name.") var name: String
        @OptionGroup var bucket: BucketOption
        @Option(name: .long, help: "Jobs of this queue running at once.") var maxConcurrent: Int?
        @Option(name: .long, help: "Unfinished jobs the queue may hold.") var maxSize: Int?
        @Option(name: .long, help: "A CI UpdateMediaQueue <Request> with the callback rule (NotifyConfig).") var request: String?

        func run() async throws {
            let (configuration, application) = try options.open(createsStore: true)
            var queue = configuration.defaultQueueTemplate(now: SystemTimeSource().now)
            queue.bucket = try bucket.name(configuration)
            try cli { try MediaQueue.validateName(name) }
            queue.name = name
            try cli { try queue.setLimits(maxConcurrent: maxConcurrent, maxSize: maxSize) }
            if let request {
                let update = try cli { try QueueUpdateRequest.parse(readFile(request)) }
                try cli { try queue.apply(update, checkRule: configuration.checkCallbackRule) }
                queue.name = name  // the argument names the new queue
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
        @Argument(help: "The QueueId, or the queue's name in the bucket (e.g. queue-1).") var queue: String
        @OptionGroup var bucket: BucketOption
        @Option(name: .long, help: "The request file.") var request: String?
        @Option(name: .long, help: "Jobs of this queue running at once.") var maxConcurrent: Int?
        @Option(name: .long, help: "Unfinished jobs the queue may hold.") var maxSize: Int?
        @Option(name: .long, help: "Active or Paused.") var state: String?

        func run() async throws {
            let (configuration, application) = try options.open()
            _ = try await application.prepare()
            let found = try await findQueue(queue, bucket: try bucket.name(configuration), application)
            let update = try request.map { request in try cli { try QueueUpdateRequest.parse(readFile(request)) } }
            let newState = try state.map { state in
                guard let value = MediaQueue.State(anyCase: state) else { throw CommandError("--state must be Active or Paused") }
                return value
            }
            let (maxConcurrent, maxSize, now) = (maxConcurrent, maxSize, SystemTimeSource().now)
            let target = try await cliAsync {
                try await application.store.changeQueue(id: found.id) { target throws(CIError) in
                    if let update { try target.apply(update, checkRule: configuration.checkCallbackRule) }
                    if let newState { target.state = newState }
                    try target.setLimits(maxConcurrent: maxConcurrent, maxSize: maxSize)
                    target.updateTime = now
                }
            }
            print(XMLTree("Response", children: [target.xml("Queue", times: configuration.formatting.times)]).xmlString())
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a queue that holds no unfinished job, is not its bucket's queue-1 and starts no workflow."
        )
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The QueueId, or the queue's name in the bucket.") var queue: String
        @OptionGroup var bucket: BucketOption

        func run() async throws {
            let (configuration, application) = try options.open()
            let target = try await findQueue(queue, bucket: try bucket.name(configuration), application)
            // Every bucket has a queue-1, made again on its next use, by whichever node uses it
            // first; the others would go on with the deleted one they remember.
            if target.name == MediaQueue.defaultName {
                throw CommandError("InvalidArgument: \(target.name) is the bucket's default queue; it cannot be deleted")
            }
            // A workflow's runs would start on a queue that is gone, failing at once.
            let starting = try await application.store.definitions(.workflow, bucket: target.bucket).filter { workflow in
                (try? WorkflowTopology.parse(workflow.body))?.start.queueID == target.id
            }
            if let workflow = starting.first {
                throw CommandError("InvalidArgument: workflow \(workflow.id) (\(workflow.name)) starts its runs on \(target.id); change or delete it first")
            }
            try await cliAsync { try await application.store.deleteQueue(id: target.id) }
            print("deleted \(target.id) (\(target.name))")
        }
    }
}

/// The queue with this id, or with this name in `bucket`.
func findQueue(_ idOrName: String, bucket: String, _ application: MediaQueueApplication) async throws -> MediaQueue {
    let all = try await application.store.queues(bucket: nil)
    guard let queue = all.first(where: { $0.id.rawValue == idOrName })
        ?? all.first(where: { $0.name == idOrName && $0.bucket == bucket })
    else {
        throw CommandError("no queue \(idOrName)")
    }
    return queue
}
