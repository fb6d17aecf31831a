import ArgumentParser
import Foundation
import MediaQueueApp
import MediaQueueCore

struct Objects: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put, get, list and remove a bucket's objects in the configured storage (as the COS object calls do).",
        subcommands: [Put.self, Get.self, List.self, Remove.self]
    )

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Upload a local file as an object.")
        @OptionGroup var options: GlobalOptions
        @OptionGroup var bucket: BucketOption
        @Argument(help: "The local file.") var file: String
        @Argument(help: "The object key, e.g. in/movie.mp4.") var key: String

        func run() async throws {
            let (configuration, application) = try options.open(createsStore: true)
            guard FileManager.default.isReadableFile(atPath: file) else { throw CommandError("cannot read \(file)") }
            let name = try bucket.name(configuration)
            let objectKey = try objectKey(key)
            try await cliAsync { try await application.putObject(from: file, bucket: name, key: objectKey) }
            print("put \(key)")
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Download an object to a local file.")
        @OptionGroup var options: GlobalOptions
        @OptionGroup var bucket: BucketOption
        @Argument(help: "The object key.") var key: String
        @Argument(help: "The local file to write, or a folder to write it into (default: the key's last segment).") var file: String?

        func run() async throws {
            let configuration = try options.load()
            let objectKey = try objectKey(key)
            let name = try bucket.name(configuration)
            let storage = try objectStorage(configuration)
            guard let written = try await storage.getObject(bucket: name, key: objectKey, to: file ?? objectKey.fileName) else {
                throw CommandError("NoSuchKey: the object \(key) does not exist")
            }
            print("got \(key) as \(written)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "List objects: size, ETag, last modified, key; rolled-up prefixes as PRE <prefix>."
        )
        @OptionGroup var options: GlobalOptions
        @OptionGroup var bucket: BucketOption
        @Option(name: .long, help: "Roll up keys at this delimiter, as ListObjects does (e.g. /).") var delimiter = ""
        @Argument(help: "Only keys starting with this.") var prefix = ""

        func run() async throws {
            let configuration = try options.load()
            let name = try bucket.name(configuration)
            let storage = try objectStorage(configuration)
            let listing = try await cliAsync { try await storage.listAllObjects(bucket: name, prefix: prefix, delimiter: delimiter) }
            let times = CITimeFormat()
            for common in listing.commonPrefixes { print("PRE \(common)") }
            for object in listing.objects {
                print([String(object.size), object.etag, times.format(object.lastModified), object.key].joined(separator: "\t"))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove an object (a missing one is fine).")
        @OptionGroup var options: GlobalOptions
        @OptionGroup var bucket: BucketOption
        @Argument(help: "The object key.") var key: String

        func run() async throws {
            let configuration = try options.load()
            do {
                let (name, objectKey) = (try bucket.name(configuration), try objectKey(key))
                try await objectStorage(configuration).remove(bucket: name, key: objectKey)
            } catch let failure as WorkFailure {
                throw CommandError("\(failure.code): \(failure.message)")
            }
            print("removed \(key)")
        }
    }
}

private func objectKey(_ text: String) throws -> ObjectKey {
    do {
        return try ObjectKey(text)
    } catch {
        throw CommandError("InvalidArgument: \(error)")
    }
}

/// The configured storage. A storage folder that is not there is refused: run with another
/// data folder than serve's, a listing would be empty and a removal would say it removed.
private func objectStorage(_ configuration: MediaQueueConfiguration) throws -> any ObjectStorage {
    if configuration.s3 == nil, !FileManager.default.fileExists(atPath: configuration.resolvedStorageDir) {
        throw CommandError("no storage folder at \(configuration.resolvedStorageDir): give this command serve's configuration (--config, or MEDIAQUEUE_DATA_DIR or MEDIAQUEUE_STORAGE_DIR)")
    }
    return configuration.objectStorage()
}
