import ArgumentParser
import Foundation
import Logging
import MediaQueueApp
import MediaQueueCore
import MediaQueueXML

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Look at and cancel jobs.", subcommands: [Get.self, Cancel.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a job's JobsDetail (XML).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The JobId.") var id: String

        func run() async throws {
            let (configuration, application) = try options.open()
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
            let (_, application) = try options.open()
            let logger = application.logger
            do {
                let result = try await application.workflowRunner(application.workers).cancel(JobID(rawValue: id), now: SystemTimeSource().now)
                switch result.outcome {
                case .cancelled: print("\(id): Cancel")
                case .stopping: print("\(id): Running, stopping")
                case .alreadyCancelled: print("\(id): Cancel (already)")
                }
                if let error = result.runDeferred {
                    logger.warning("the job's workflow run moves on when a running service next looks at it", metadata: ["error": "\(error)"])
                }
            } catch let error as CIError {
                throw CommandError("\(error.code): \(error.message)")
            }
        }
    }
}
