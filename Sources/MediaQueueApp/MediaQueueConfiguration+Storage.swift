import Foundation
public import MediaQueueCore
public import MediaQueueWorkers

/// Object storage: a local folder (maybe a shared mount), or an S3-compatible store.
extension MediaQueueConfiguration {
    /// The S3 store's settings (`MEDIAQUEUE_S3_*`), or nil for the local folder.
    public var s3: S3Configuration? {
        guard let endpoint = s3Endpoint else { return nil }
        return S3Configuration(
            endpoint: endpoint, region: s3Region, accessKeyID: s3AccessKeyID, secretAccessKey: s3SecretAccessKey,
            pathStyle: s3PathStyle, buckets: s3Buckets, multipartThreshold: s3MultipartThresholdBytes, partSize: s3PartBytes,
            rangeSize: s3RangeBytes, scratchDirectory: dataDir + "/s3-scratch", caFile: s3CAFile
        )
    }

    /// The buckets' objects: the S3-compatible store when one is configured, else the storage folder.
    public func objectStorage() -> any ObjectStorage {
        s3.map(S3ObjectStorage.init) ?? LocalObjectStorage(root: resolvedStorageDir)
    }

    mutating func applyStorage(_ key: String, _ value: String, source: String) throws -> Bool {
        func int() throws -> Int {
            guard let number = Int(value.trimmingCharacters(in: .whitespaces)), number > 0 else {
                throw ConfigurationError("\(source): \(key) must be a positive whole number, not '\(value)'")
            }
            return number
        }
        switch key {
        case "s3Endpoint": s3Endpoint = value.isEmpty ? nil : value
        case "s3Region": s3Region = value
        case "s3AccessKeyId", "s3AccessKeyID": s3AccessKeyID = value
        case "s3SecretAccessKey": s3SecretAccessKey = value
        case "s3PathStyle": s3PathStyle = try Self.bool(key, value, source: source)
        case "s3Buckets":
            s3Buckets = [:]
            for pair in value.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw ConfigurationError("\(source): s3Buckets takes ciBucket=storeBucket pairs separated by commas, not '\(pair)'")
                }
                s3Buckets[parts[0]] = parts[1]
            }
        case "s3MultipartThresholdBytes": s3MultipartThresholdBytes = try int()
        case "s3PartBytes": s3PartBytes = try int()
        case "s3RangeBytes": s3RangeBytes = try int()
        case "s3CaFile", "s3CAFile": s3CAFile = value.isEmpty ? nil : value
        default: return false
        }
        return true
    }

    func validateStorage() throws {
        guard s3Endpoint != nil else { return }
        guard s3Endpoint?.hasPrefix("http://") == true || s3Endpoint?.hasPrefix("https://") == true else {
            throw ConfigurationError("s3Endpoint must be an http:// or https:// URL")
        }
        guard !s3AccessKeyID.isEmpty, !s3SecretAccessKey.isEmpty else {
            throw ConfigurationError("an S3 store needs MEDIAQUEUE_S3_ACCESS_KEY_ID and MEDIAQUEUE_S3_SECRET_ACCESS_KEY")
        }
        // S3's parts are 5 MiB (all but the last) to 5 GiB, and so is a single PUT at most.
        guard (5 << 20...5 << 30).contains(s3PartBytes), (s3PartBytes...5 << 30).contains(s3MultipartThresholdBytes) else {
            throw ConfigurationError(
                "s3PartBytes must be from 5 MiB (5242880) to 5 GiB (5368709120), and s3MultipartThresholdBytes from s3PartBytes to 5 GiB"
            )
        }
    }
}
