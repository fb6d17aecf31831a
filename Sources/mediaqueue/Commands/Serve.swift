import ArgumentParser
import Foundation
import Logging
import MediaQueueApp
import MediaQueueCore
import MediaQueueXML

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the service: intake, dispatcher, workers and callback relay.")

    @OptionGroup var options: GlobalOptions

    @Option(name: .long, help: "Comma-separated roles to run: intake, dispatch, relay, api (default: all).")
    var role: String?

    func run() async throws {
        let configuration = try options.load(roles: role)
        try configuration.checkToolsForServing()
        keepFreedHeapMemory()
        let logger = options.logger(configuration, oneShot: false)
        if !configuration.unknownVariables.isEmpty {
            logger.warning("environment variables that name no setting are ignored", metadata: ["variables": "\(configuration.unknownVariables.joined(separator: ", "))"])
        }
        let application = try MediaQueueApplication(configuration: configuration, logger: logger)
        // Written straight to the file descriptor: scripts wait for this line on a pipe, where
        // print's buffer would hold it back.
        let data = configuration.databaseURL.map(redacted) ?? configuration.dataDir
        let line = "mediaqueue: consuming \(configuration.intakeQueue) on \(redacted(configuration.amqpURL)); data in \(data)\n"
        FileHandle.standardOutput.write(Data(line.utf8))
        let scheme = configuration.tlsCertificateFile == nil ? "http" : "https"
        try await application.run { host, port in
            FileHandle.standardOutput.write(Data("mediaqueue: API listening on \(scheme)://\(host):\(port)\n".utf8))
        }
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
