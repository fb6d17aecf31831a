import Foundation
import MediaQueueTestSupport

extension ChildProcess {
    /// The port of the API a `mediaqueue serve` child logged it listens on (the latest start's,
    /// when several wrote to one log).
    func apiPort() async throws -> Int {
        try await eventually("the API to listen") { () -> Int? in
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            guard let line = text.split(separator: "\n").last(where: { $0.contains("API listening on http://127.0.0.1:") }) else { return nil }
            return Int(line.split(separator: ":").last ?? "")
        }
    }
}
