import ArgumentParser
import Foundation
import Logging
import MediaQueueApp
import MediaQueueCore
import MediaQueueXML

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
            let (_, application) = try options.open()
            let dead = try await application.store.deadOutbox(limit: try positive(limit, "--limit"))
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
            let (_, application) = try options.open()
            let count = try await application.store.redriveDead(now: SystemTimeSource().now)
            print("\(count) dead deliver\(count == 1 ? "y" : "ies") due again")
        }
    }

    struct Secret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a bucket's secret for verifying callback signatures (created if it has none), or rotate it.",
            discussion: """
                With --rotate, the bucket gets a new secret and the old one is still signed with for \
                --grace-seconds: each callback then carries both signatures, so receivers can switch \
                to the new secret before the old one stops. Running nodes use the new secret within \
                MEDIAQUEUE_CALLBACK_SECRET_REFRESH.
                """
        )
        @OptionGroup var options: GlobalOptions
        @OptionGroup var bucket: BucketOption
        @Flag(name: .long, help: "Make a new secret; prints it.") var rotate = false
        @Option(name: .long, help: "With --rotate: how long the old secret is still signed with.") var graceSeconds: Int = Self.defaultGrace

        func validate() throws {
            guard (0...30 * 86_400).contains(graceSeconds) else { throw ValidationError("--grace-seconds must be 0 to 2592000 (30 days)") }
            guard rotate || graceSeconds == Self.defaultGrace else { throw ValidationError("--grace-seconds goes with --rotate") }
        }

        static let defaultGrace = 86_400

        func run() async throws {
            let (configuration, application) = try options.open(createsStore: true)
            let name = try bucket.name(configuration)
            guard rotate else {
                print(try await application.store.webhookSecret(bucket: name))
                return
            }
            let secrets = try await application.store.rotateSigningSecret(bucket: name, now: SystemTimeSource().now, grace: .seconds(graceSeconds))
            print(secrets.current)
        }
    }
}
