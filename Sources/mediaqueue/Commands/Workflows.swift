import ArgumentParser
import Foundation
import MediaQueueApp
import MediaQueueCore
import MediaQueueXML

struct Workflows: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List and show a bucket's workflows, start a run on an object, and follow the runs.",
        subcommands: [List.self, Get.self, Trigger.self, Executions.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Workflows of the bucket: id, state, name, object prefix.")
        @OptionGroup var options: GlobalOptions
        @OptionGroup var bucket: BucketOption

        func run() async throws {
            let (configuration, application) = try options.open()
            for workflow in try await application.store.definitions(.workflow, bucket: try bucket.name(configuration)) {
                let prefix = (try? WorkflowTopology.parse(workflow.body))?.start.objectPrefix ?? "?"
                print([workflow.id, workflow.label, workflow.name, prefix.isEmpty ? "(every object)" : prefix].joined(separator: "\t"))
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a workflow as CI's <MediaWorkflow> XML.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The workflow id.") var id: String

        func run() async throws {
            let (configuration, application) = try options.open()
            guard let workflow = try await application.store.definition(.workflow, id: id) else {
                throw CommandError("NoSuchWorkflow: workflow \(id) does not exist")
            }
            print(workflow.workflowDocument("MediaWorkflow", configuration.formatting).xmlString())
        }
    }

    struct Trigger: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a run of a workflow on an existing object; prints its RunId.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The workflow id.") var id: String
        @Argument(help: "The object key, e.g. in/movie.mp4.") var key: String

        func run() async throws {
            let (_, application) = try options.open()
            guard let workflow = try await application.store.definition(.workflow, id: id) else {
                throw CommandError("NoSuchWorkflow: workflow \(id) does not exist")
            }
            let run = try await cliAsync {
                try await application.workflowRunner(application.workers).trigger(workflow, object: key, storage: application.storage)
            }
            print(run.id)
        }
    }

    struct Executions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A workflow's runs, newest first: RunId, state, created, object; with --run, one run's tasks."
        )
        @OptionGroup var options: GlobalOptions
        @OptionGroup var bucket: BucketOption
        @Option(name: .long, help: "Show this run's tasks: node, type, state, job id, code, message.") var run: String?
        @Option(name: .long, help: "List at most this many runs.") var limit: Int = 50
        @Argument(help: "The workflow id (not needed with --run).") var id: String?

        func run() async throws {
            let (configuration, application) = try options.open()
            let times = configuration.formatting.times
            if let runID = run {
                guard let found = try await application.store.run(id: runID) else { throw CommandError("NoSuchWorkflow: run \(runID) does not exist") }
                print("\(found.id)\t\(found.state.rawValue)\t\(times.format(found.createTime))\t\(found.object)")
                for task in found.tasks {
                    print(["  " + task.name, task.type, task.state, task.jobID?.rawValue ?? "-", task.code, task.message.replacingNewlines].joined(separator: "\t"))
                }
                return
            }
            guard let id else { throw ValidationError("name a workflow id, or --run <RunId>") }
            var query = RunQuery(bucket: try bucket.name(configuration), workflowID: id)
            query.limit = try positive(limit, "--limit")
            for found in try await application.store.runs(query) {
                print([found.id, found.state.rawValue, times.format(found.createTime), found.object].joined(separator: "\t"))
            }
        }
    }
}
