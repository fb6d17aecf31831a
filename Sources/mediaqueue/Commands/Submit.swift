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

    @OptionGroup var bucket: BucketOption

    @Option(name: .long, help: "Seconds to wait for the service's answer.")
    var timeout: Int = 30

    func validate() throws {
        _ = try positive(timeout, "--timeout")
    }

    func run() async throws {
        let configuration = try options.load()
        let body = try readFile(request)
        let reply = try await Submitter.submit(
            body, bucket: try bucket.checked(bucket.bucket), timeout: .seconds(timeout), configuration: configuration, logger: options.logger(configuration)
        )
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
