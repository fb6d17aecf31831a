import MediaQueueCore

/// The API's own errors (authentication, limits) in CI's error shape, and the HTTP status of
/// every `CIError` code.
enum APIError {
    static let accessDenied = CIError.Code.accessDenied
    static let signatureDoesNotMatch = CIError.Code("SignatureDoesNotMatch")
    static let invalidAccessKeyID = CIError.Code("InvalidAccessKeyId")
    static let requestExpired = CIError.Code("RequestExpired")
    static let requestNotYetValid = CIError.Code("RequestNotYetValid")
    static let entityTooLarge = CIError.Code("EntityTooLarge")
    static let requestHeaderTooLarge = CIError.Code("RequestHeaderSectionTooLarge")
    static let noSuchBucket = CIError.Code("NoSuchBucket")
    static let methodNotAllowed = CIError.Code("MethodNotAllowed")
    static let notFound = CIError.Code("NotFound")
    static let noSuchKey = CIError.Code.noSuchKey
    static let invalidRange = CIError.Code("InvalidRange")
    static let notImplemented = CIError.Code("NotImplemented")
    static let preconditionFailed = CIError.Code("PreconditionFailed")
    /// A passing trouble the client may try again after (COS's `ServiceUnavailable`).
    static let serviceUnavailable = CIError.Code("ServiceUnavailable")

    /// The HTTP status CI-style clients expect for a code.
    static func status(of code: CIError.Code) -> Int {
        switch code {
        case accessDenied, signatureDoesNotMatch, invalidAccessKeyID, requestExpired, requestNotYetValid: 403
        case .noSuchQueue, .noSuchJob, noSuchBucket, notFound, noSuchKey, .noSuchTemplate, .noSuchWorkflow: 404
        case methodNotAllowed: 405
        case .invalidJobState, .resourceInUse: 409
        case entityTooLarge: 413
        case requestHeaderTooLarge: 431
        case invalidRange: 416
        case preconditionFailed: 412
        case .internalError: 500
        case notImplemented: 501
        case serviceUnavailable: 503
        default: 400
        }
    }
}
