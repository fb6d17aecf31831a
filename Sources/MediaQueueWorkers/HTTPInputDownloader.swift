public import MediaQueueCore
public import MediaQueueHTTPClient

/// Fetches `Input.Url` with the libcurl client: GET only, no redirects, every resolved address
/// checked by the client's SSRF guard (the same policy as callbacks), a byte limit and a time
/// limit per download.
///
/// Failures (as the job's `Code`): `InputNotExist` when the server answers 404 or 410;
/// `InputTooLarge` past the byte limit; `InputFetchFailed` for any other status, a refused
/// address, a timeout or a broken connection.
public struct HTTPInputDownloader: InputDownloader {
    /// 2 GiB by default (`MEDIAQUEUE_INPUT_URL_MAX_BYTES`).
    public static let defaultMaxBytes = 2 << 30
    /// Ten minutes by default (`MEDIAQUEUE_INPUT_URL_TIMEOUT_SECONDS`).
    public static let defaultTimeout: Duration = .seconds(600)

    private let client: HTTPClient
    public let maxBytes: Int
    public let timeout: Duration

    public init(client: HTTPClient, maxBytes: Int = HTTPInputDownloader.defaultMaxBytes, timeout: Duration = HTTPInputDownloader.defaultTimeout) {
        self.client = client
        self.maxBytes = maxBytes
        self.timeout = timeout
    }

    public func download(_ url: String, to path: String) async throws {
        let shown = "Input.Url '\(JobInput.withoutQuery(url))'"
        let download: HTTPDownload
        do {
            download = try await client.download(url, toFile: path, maxBytes: maxBytes, timeout: timeout)
        } catch let error as HTTPClientError {
            if error.code == .tooLarge {
                throw WorkFailure(code: "InputTooLarge", message: "\(shown) is larger than the limit of \(maxBytes) bytes")
            }
            throw WorkFailure(code: "InputFetchFailed", message: "cannot fetch \(shown): \(error.message)")
        }
        let status = download.response.status
        guard download.succeeded else {
            if status == 404 || status == 410 {
                throw WorkFailure(code: "InputNotExist", message: "\(shown) answered \(status)")
            }
            let redirect = (300..<400).contains(status) ? " (redirects are not followed)" : ""
            throw WorkFailure(code: "InputFetchFailed", message: "\(shown) answered \(status)\(redirect)")
        }
    }
}
