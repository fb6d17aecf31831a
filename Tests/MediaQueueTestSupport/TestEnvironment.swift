import Foundation

/// What the test command (`scripts/test.sh`) tells the test process about the services it started.
///
/// Two private brokers: the main one that every integration test shares (each test on its own
/// uniquely named queues and exchanges), and a fault broker that only restart tests use, one at
/// a time, so that a restart never disturbs an unrelated test.
public enum TestEnvironment {
    /// URL of the shared test broker.
    public static var amqpURL: String {
        value("MEDIAQUEUE_TEST_AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5673/"
    }

    /// URL of the broker that restart tests may stop and start.
    public static var faultAMQPURL: String? { value("MEDIAQUEUE_TEST_FAULT_AMQP_URL") }

    /// A command line that takes one argument, `stop`, `start` or `restart`, for the fault broker.
    public static var faultBrokerControl: String? { value("MEDIAQUEUE_TEST_FAULT_BROKER_CTL") }

    /// `amqps://` URL of the fault broker's TLS listener (scripts/fault-broker.sh makes one).
    public static var faultAMQPSURL: String? { value("MEDIAQUEUE_TEST_FAULT_AMQPS_URL") }

    /// PEM file of the test CA that signed the fault broker's TLS certificate.
    public static var faultCACertificatePath: String? { value("MEDIAQUEUE_TEST_FAULT_CA_FILE") }

    /// The `mediaqueue` executable built with the tests.
    public static var mediaqueueBinary: String {
        value("MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY")
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/mediaqueue").path
    }

    /// A name no other test (or earlier run) uses, for queues, exchanges and folders.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix).\(UUID().uuidString.prefix(8).lowercased())"
    }

    public static func value(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }
}
