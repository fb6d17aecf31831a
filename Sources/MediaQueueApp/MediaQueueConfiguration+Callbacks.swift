import Foundation
public import MediaQueueCore
public import MediaQueueEngine
public import MediaQueueHTTPClient

/// The HTTP callback settings: parsing, checks, and the options they make.
extension MediaQueueConfiguration {
    /// Applies one `callback…` key; returns false for keys that are not about callbacks.
    /// The queue and exchange names TDMQ callbacks may use: not the service's intake and
    /// dead-letter queues, and with `callbackMqBucketPrefix`, only the bucket's. The events
    /// exchange is allowed: a bucket's `queue-1` announces its jobs there by default, and what a
    /// rule sends there is a real event of the bucket's own jobs.
    public var mqNamePolicy: MqNamePolicy {
        MqNamePolicy(reserved: [intakeQueue, deadLetterQueue], bucketPrefix: callbackMqBucketPrefix)
    }

    mutating func applyCallbackSetting(_ key: String, _ value: String, source: String) throws -> Bool {
        switch key {
        case "callbackMqBucketPrefix":
            callbackMqBucketPrefix = try Self.bool(key, value, source: source)
        case "callbackRetrySchedule", "callbackRetryDelays":
            var delays: [Duration] = []
            for item in value.split(separator: ",") {
                guard let delay = Self.parseDuration(String(item)) else {
                    throw ConfigurationError("\(source): \(key) is a comma-separated list of delays such as 0,5s,30s,2m, not '\(value)'")
                }
                delays.append(delay)
            }
            callbackRetrySchedule = delays.isEmpty ? nil : delays
        case "callbackAllowedNetworks":
            callbackAllowedNetworks = value.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case "inputUrlAllowedNetworks", "inputURLAllowedNetworks":
            inputURLAllowedNetworks = value.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case "callbackConnectTimeout", "callbackTimeout":
            guard let duration = Self.parseDuration(value), duration > .zero else {
                throw ConfigurationError("\(source): \(key) must be a positive duration such as 10s or 500ms, not '\(value)'")
            }
            if key == "callbackTimeout" { callbackTimeout = duration } else { callbackConnectTimeout = duration }
        case "callbackMaxPerEndpoint":
            guard let number = Int(value.trimmingCharacters(in: .whitespaces)), number > 0 else {
                throw ConfigurationError("\(source): \(key) must be a positive whole number, not '\(value)'")
            }
            callbackMaxPerEndpoint = number
        case "callbackSecretRefresh":
            guard let duration = Self.parseDuration(value) else {
                throw ConfigurationError("\(source): \(key) must be a duration such as 30s or 0, not '\(value)'")
            }
            callbackSecretRefresh = duration
        case "callbackCaFile", "callbackCAFile":
            callbackCAFile = value.isEmpty ? nil : value
        default:
            return false
        }
        return true
    }

    func validateCallbackSettings() throws {
        if case .failure(let error) = IPNetwork.parseList(callbackAllowedNetworks.joined(separator: ",")) {
            throw ConfigurationError("callbackAllowedNetworks: \(error)")
        }
        if case .failure(let error) = IPNetwork.parseList(inputURLAllowedNetworks.joined(separator: ",")) {
            throw ConfigurationError("inputUrlAllowedNetworks: \(error)")
        }
        if let callbackCAFile, !FileManager.default.isReadableFile(atPath: callbackCAFile) {
            throw ConfigurationError("callbackCaFile: cannot read '\(callbackCAFile)'")
        }
    }

    /// `250ms`, `5s`, `2m`, `1h`, or a bare number of seconds (`0`, `1.5`).
    static func parseDuration(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(trimmed)
        var scale = 1.0
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            number = trimmed.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        return .milliseconds(Int64((value * scale * 1000).rounded()))
    }

    /// The SSRF guard's exemptions.
    public var callbackAddressPolicy: AddressPolicy {
        AddressPolicy(allowedNetworks: callbackAllowedNetworks.compactMap(IPNetwork.init))
    }

    /// Settings of the HTTP client that sends callbacks.
    public var httpClientConfiguration: HTTPClientConfiguration {
        HTTPClientConfiguration(
            connectTimeout: callbackConnectTimeout, timeout: callbackTimeout, addressPolicy: callbackAddressPolicy, caFile: callbackCAFile
        )
    }

    /// Settings of the HTTP client that fetches `Input.Url`: the SSRF guard with its own allowed
    /// networks (a job's URL is a tenant's choice: the callbacks' exemptions would let any tenant
    /// probe the operator's internal receivers), the callbacks' connect timeout and CAs, and the
    /// download time limit.
    public var inputURLClientConfiguration: HTTPClientConfiguration {
        HTTPClientConfiguration(
            connectTimeout: callbackConnectTimeout, timeout: .seconds(inputURLTimeoutSeconds),
            addressPolicy: AddressPolicy(allowedNetworks: inputURLAllowedNetworks.compactMap(IPNetwork.init)),
            maxIdleConnections: 16, caFile: callbackCAFile
        )
    }

    /// The configured retry schedule, or the standard one.
    public var retrySchedule: RetrySchedule {
        callbackRetrySchedule.map { RetrySchedule(delays: $0) } ?? .standard
    }

    /// Settings of the HTTP relay.
    public var httpRelayOptions: HTTPRelayOptions {
        HTTPRelayOptions(retrySchedule: retrySchedule, maxPerEndpoint: callbackMaxPerEndpoint)
    }

    /// Refuses a callback URL whose host is a literal address the SSRF guard would refuse (the
    /// guard checks every address again at connect time; this only gives the early, clear error).
    public func checkCallbackURL(_ url: String, element: String) throws(CIError) {
        let endpoint = CallbackEndpoint.of(url: url)
        guard let colon = endpoint.lastIndex(of: ":") else { return }
        guard let address = IPAddress(String(endpoint[..<colon])) else { return }
        if let refusal = callbackAddressPolicy.refusal(for: address) {
            throw CIError(.invalidArgument, "\(element): \(refusal)", element: element)
        }
    }

    /// Checks a new or changed rule's destination: `checkCallbackURL` for an enabled `Url` rule,
    /// a name `mqNamePolicy` lets `bucket` use for a `TDMQ` one.
    public func checkCallbackRule(_ rule: NotifyConfig, bucket: String) throws(CIError) {
        guard rule.isOn else { return }
        switch rule.type {
        case .url?: try checkCallbackURL(rule.url, element: "NotifyConfig.Url")
        case .tdmq?: try mqNamePolicy.check(rule.mqName, bucket: bucket, element: "NotifyConfig.MqName")
        case nil: return
        }
    }
}
