import ArgumentParser
import Foundation
import Logging
import MediaQueueApp
import MediaQueueCore
import MediaQueueXML

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
