import ArgumentParser
import Foundation
import Logging
import MediaQueueApp
import MediaQueueCore
import MediaQueueXML

func positive(_ value: Int, _ option: String) throws -> Int {
    guard value > 0 else { throw CommandError("\(option) must be at least 1") }
    return value
}

/// The bytes of the file at `path`, or a one-line error naming it.
func readFile(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CommandError("cannot read \(path): \(FileManager.default.fileExists(atPath: path) ? "not a readable file" : "no such file")")
    }
    return [UInt8](data)
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

/// `urls` (one URL or a comma-separated list of them) with each password replaced by `***`; a
/// password's end is the last '@' before the host, since it may hold '@' or '/' unencoded.
func redacted(_ urls: String) -> String {
    urls.split(separator: ",", omittingEmptySubsequences: false).map { entry in
        let url = String(entry)
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return url.replacingCharacters(in: colon..<at, with: ":***")
    }.joined(separator: ",")
}

/// A failure to report in one line, without the usage text that `ValidationError` adds.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: callbacks

extension String {
    var replacingNewlines: String {
        String(map { $0 == "\n" || $0 == "\r" || $0 == "\t" ? " " : $0 })
    }
}
