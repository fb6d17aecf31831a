import Foundation

/// The broker that restart tests stop and start.
///
/// All test targets run in one process, so an actor is enough to let one restart test at a time
/// own the fault broker, whichever target it is in.
public actor FaultBroker {
    public static let shared = FaultBroker()

    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// Whether the test command started a fault broker (restart tests are skipped otherwise).
    public nonisolated static var isAvailable: Bool {
        TestEnvironment.faultAMQPURL != nil && TestEnvironment.faultBrokerControl != nil
    }

    public nonisolated var url: String { TestEnvironment.faultAMQPURL ?? "" }

    /// Runs `body` with exclusive use of the fault broker; the broker is started again afterwards
    /// even when `body` throws, so the next test finds it up.
    public func withExclusiveAccess<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        while busy {
            await withCheckedContinuation { waiters.append($0) }
        }
        busy = true
        defer {
            busy = false
            if !waiters.isEmpty { waiters.removeFirst().resume() }
        }
        do {
            let result = try await body()
            try await Self.control("start")
            return result
        } catch {
            try? await Self.control("start")
            throw error
        }
    }

    /// Runs the fault broker's control command (`stop`, `start`, `restart`) off the cooperative pool.
    public nonisolated static func control(_ action: String) async throws {
        guard let command = TestEnvironment.faultBrokerControl else {
            throw TimedOut(description: "no fault broker configured (MEDIAQUEUE_TEST_FAULT_BROKER_CTL)")
        }
        try await runShell("\(command) \(action)")
    }
}

/// Runs a shell command to completion off the cooperative pool and throws when it fails.
public func runShell(_ command: String) async throws {
    try await runCommand("/bin/bash", ["-c", command])
}
