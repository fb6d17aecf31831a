/// How large a CreateMediaJobs submission may be: the same for the AMQP intake and the REST API,
/// so a request refused on one way in is refused on the other.
public struct SubmissionLimits: Sendable, Hashable {
    /// The largest body, in bytes (`MEDIAQUEUE_MAX_BODY_BYTES`).
    public var maxBodyBytes: Int
    /// The most `Operation`s (jobs) one request may hold (`MEDIAQUEUE_MAX_OPERATIONS`).
    public var maxOperations: Int
    /// The longest `UserData`, in bytes (`MEDIAQUEUE_MAX_USER_DATA_BYTES`; CI's is 1,024).
    public var maxUserDataBytes: Int
    /// The longest object key (`Object`, anywhere in an operation or its input), in bytes
    /// (`MEDIAQUEUE_MAX_OBJECT_KEY_BYTES`; COS's 850, which is also the most it may be).
    public var maxObjectKeyBytes: Int

    public init(maxBodyBytes: Int = 1 << 20, maxOperations: Int = 100, maxUserDataBytes: Int = 1024, maxObjectKeyBytes: Int = ObjectKey.maxLength) {
        self.maxBodyBytes = maxBodyBytes
        self.maxOperations = maxOperations
        self.maxUserDataBytes = maxUserDataBytes
        self.maxObjectKeyBytes = min(maxObjectKeyBytes, ObjectKey.maxLength)
    }

    /// Refuses a body of `size` bytes when it is over `maxBodyBytes`: one read whole, or one the
    /// AMQP intake only counted.
    public func checkBodySize(_ size: Int) throws(CIError) {
        guard size <= maxBodyBytes else {
            throw CIError(.invalidArgument, "the request is \(size) bytes, larger than \(maxBodyBytes) bytes", element: "Request")
        }
    }
}
