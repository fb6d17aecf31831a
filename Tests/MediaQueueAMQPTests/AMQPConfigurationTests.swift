@testable import MediaQueueAMQP
import Testing

@Suite("AMQP URL parsing")
struct AMQPConfigurationTests {
    @Test func defaults() throws {
        let configuration = try AMQPConfiguration(url: "amqp://broker.example")
        #expect(configuration.description.contains("amqp://guest:***@broker.example:5672/"))
        #expect(configuration.verifyPeer)
        #expect(configuration.heartbeat == .seconds(10))
        #expect(configuration.connectTimeout == .seconds(10))
        #expect(configuration.reconnectDelay == .milliseconds(100) ... .seconds(5))
        #expect(configuration.confirmWindow == 1000)
    }

    @Test func explicitPartsAndVhostDecoding() throws {
        let configuration = try AMQPConfiguration(url: "amqp://alice:s3cret@10.0.0.5:5999/media%2Fqueue")
        #expect(configuration.description.contains("amqp://alice:***@10.0.0.5:5999/media%2Fqueue"))
        let root = try AMQPConfiguration(url: "amqp://h/%2F")
        #expect(root.description.contains("@h:5672/"))
        let empty = try AMQPConfiguration(url: "amqp://h/")
        #expect(empty.description.hasSuffix("@h:5672/, heartbeat: 10.0 seconds, confirmWindow: 1000, connectionName: mediaqueue)"))
    }

    @Test func amqpsUsesPort5671() throws {
        let configuration = try AMQPConfiguration(url: "amqps://u:p@secure.example/vh")
        #expect(configuration.description.contains("amqps://u:***@secure.example:5671/vh"))
    }

    @Test func ipv6Host() throws {
        let configuration = try AMQPConfiguration(url: "amqp://[::1]:5673/")
        #expect(configuration.description.contains("@[::1]:5673/"))
    }

    @Test(arguments: [
        ("http://h/", "scheme"),
        ("broker:5672", "scheme"),
        ("amqp://h:99999/", "port"),
        ("amqp://h:abc/", "port"),
        ("amqp://h:0/", "port"),
        ("amqp://h/%zz", "percent"),
    ])
    func invalidURLs(url: String, mentions: String) {
        #expect {
            _ = try AMQPConfiguration(url: url)
        } throws: { error in
            guard let error = error as? AMQPError else { return false }
            return error.code == .invalidURL && error.message.contains(mentions)
        }
    }

    @Test func passwordNeverShown() throws {
        let configuration = try AMQPConfiguration(url: "amqp://user:TopSecretPw@host:1234/")
        #expect(!configuration.description.contains("TopSecretPw"))
        #expect(!String(describing: configuration).contains("TopSecretPw"))
        do {
            _ = try AMQPConfiguration(url: "amqp://user:TopSecretPw@host:99999/")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidURL)
            #expect(!error.description.contains("TopSecretPw"))
            #expect(!error.message.contains("TopSecretPw"))
        }
    }

    /// Unencoded, a password's '/' was taken for the start of the vhost: the host became the
    /// user name, the port part of the password, and both showed in errors and logs.
    @Test func aPasswordWithSlashesQuestionMarksAndAtSignsIsReadAsAPassword() throws {
        let url = "amqp://mq:2024/se?cr#e@t@broker.internal:5673/media"
        let endpoint = try AMQPEndpoint(parsing: url)
        #expect(endpoint.host == "broker.internal" && endpoint.port == 5673 && endpoint.vhost == "media")
        #expect(endpoint.user == "mq" && endpoint.password == "2024/se?cr#e@t")
        let configuration = try AMQPConfiguration(url: url)
        #expect(configuration.description.contains("amqp://mq:***@broker.internal:5673/media"))
        #expect(!configuration.description.contains("se?cr"))
    }

    @Test func severalURLsNameAClustersNodesAndEachIsChecked() throws {
        let configuration = try AMQPConfiguration(url: "amqp://u:pw1@node-1:5672/, amqp://u:pw2@node-2:5673/")
        #expect(configuration.redactedURL == "amqp://u:***@node-1:5672/,amqp://u:***@node-2:5673/")
        #expect(!configuration.description.contains("pw2"))
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: "amqp://node-1/,http://node-2/") }
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: " , ") }
    }

    /// rabbitmq-c loads no trust store of its own: with no CA file named, OpenSSL's
    /// `SSL_CERT_FILE` or else the system's bundle is given to it.
    @Test func amqpsTrustsTheSystemStoreWhenNoCAFileIsNamed() {
        #expect(AMQPConfiguration.defaultCAFile(environment: ["SSL_CERT_FILE": "/etc/mq/ca.pem"]) == "/etc/mq/ca.pem")
        let system = AMQPConfiguration.defaultCAFile(environment: [:])
        #expect(system == "/etc/ssl/certs/ca-certificates.crt" || system == nil)
    }
}
