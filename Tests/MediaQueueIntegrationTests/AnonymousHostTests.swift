import Foundation
import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real service in anonymous mode, asked over real HTTP the way a browser steered by DNS
/// rebinding would ask it: with a name of another site in `Host`.
@Suite struct AnonymousHostTests {
    static let rebound = "rebound.example.net"

    @Test(.timeLimit(.minutes(5))) func anonymousAccessIsServedOnlyToNamesNoOtherSiteCanPointHere() async throws {
        let harness = try ServiceHarness {
            $0.anonymous = true
            $0.hostSuffixes = ["mq.internal"]
            $0.metricsToken = "scrape-token"
        }
        let port = Mutex<Int?>(nil)
        let (application, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
        defer { service.cancel() }
        let api = try await eventually("the API to listen") { port.withLock { $0 } }
        let queue = try await application.prepare()
        let bucket = harness.configuration.bucket

        let refused = try await Self.request(port: api, "GET /\(bucket)/queue", host: "\(Self.rebound):\(api)")
        #expect(refused.status == 403)
        #expect(refused.body.contains("<Code>AccessDenied</Code>"))
        #expect(refused.body.contains("MEDIAQUEUE_HOST_SUFFIXES"))
        for host in ["127.0.0.1:\(api)", "localhost:\(api)", "mq.internal", "\(bucket).mq.internal:\(api)"] {
            let path = host.hasPrefix(bucket) ? "/queue" : "/\(bucket)/queue"
            let served = try await Self.request(port: api, "GET \(path)", host: host)
            #expect(served.status == 200, "Host: \(host)")
            #expect(served.body.contains("<Name>queue-1</Name>"), "Host: \(host)")
        }

        // A page of another site posting a submission to an allowed name: refused, no job.
        let submission = "<Request><Tag>MediaInfo</Tag><Input><Object>in/a.mp4</Object></Input><Operation/></Request>"
        for header in ["Origin: https://evil.example", "Sec-Fetch-Site: cross-site"] {
            let posted = try await Self.request(
                port: api, "POST /\(bucket)/jobs", host: "127.0.0.1:\(api)",
                headers: [header, "Content-Type: text/plain", "Content-Length: \(submission.utf8.count)"], body: submission
            )
            #expect(posted.status == 403 && posted.body.contains("from a page of another site"), "\(header)")
        }
        #expect(try await application.store.jobs(JobQuery(bucket: bucket)).isEmpty)

        // The console: no anonymous viewer under the other name, so its pages ask for a sign-in
        // that says why, and a form posted from that origin changes nothing.
        let page = try await Self.request(port: api, "GET /console/b/\(bucket)/jobs", host: Self.rebound)
        #expect(page.status == 303 && page.headers.contains("location: /console/login"))
        let login = try await Self.request(port: api, "GET /console/login", host: Self.rebound)
        #expect(login.status == 200 && login.body.contains("anonymous access is served only to requests that name this server"))
        let form = "state=Paused"
        let pause = try await Self.request(
            port: api, "POST /console/b/\(bucket)/queues/\(queue.id)/state", host: Self.rebound,
            headers: ["Origin: http://\(Self.rebound)", "Content-Type: application/x-www-form-urlencoded", "Content-Length: \(form.utf8.count)"],
            body: form
        )
        #expect(pause.status == 401)
        #expect(try await application.store.queue(id: queue.id)?.state == .active)
        let local = try await Self.request(port: api, "GET /console/b/\(bucket)/jobs", host: "127.0.0.1:\(api)")
        #expect(local.status == 200)

        // `/metrics` with a token configured: only a scrape that sends it.
        let unscraped = try await Self.request(port: api, "GET /metrics", host: "127.0.0.1:\(api)")
        #expect(unscraped.status == 401 && unscraped.headers.contains("www-authenticate: bearer"))
        #expect(!unscraped.body.contains(queue.id.rawValue))
        let wrong = try await Self.request(port: api, "GET /metrics", host: "127.0.0.1:\(api)", headers: ["Authorization: Bearer scrape-tokeN"])
        #expect(wrong.status == 401)
        let scraped = try await Self.request(port: api, "GET /metrics", host: "127.0.0.1:\(api)", headers: ["Authorization: Bearer scrape-token"])
        #expect(scraped.status == 200 && scraped.body.contains("mediaqueue_"))
    }

    /// One HTTP/1.1 request on a connection of its own, written byte for byte (URLSession sets
    /// `Host` itself): the status, the header lines lower-cased, and the body.
    static func request(
        port: Int, _ line: String, host: String, headers: [String] = [], body: String = ""
    ) async throws -> (status: Int, headers: String, body: String) {
        let descriptor = try APIIdleTimeoutTests.connect(port: port)
        let text = ([line + " HTTP/1.1", "Host: \(host)", "Connection: close"] + headers).joined(separator: "\r\n") + "\r\n\r\n" + body
        let bytes = Array(text.utf8)
        guard write(descriptor, bytes, bytes.count) == bytes.count else {
            close(descriptor)
            throw POSIXError(.EIO)
        }
        let received = String(decoding: await APIIdleTimeoutTests.readUntilClosed(descriptor).received, as: UTF8.self)
        let parts = received.components(separatedBy: "\r\n\r\n")
        let head = parts[0]
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, head.lowercased(), parts.dropFirst().joined(separator: "\r\n\r\n"))
    }
}
