public import Hummingbird

/// Per-request state: the bucket the request is about and the id printed in `x-ci-request-id`
/// and error bodies.
public struct APIContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var bucket: String = ""
    public var requestID: String = ""

    public init(source: Source) {
        self.coreContext = .init(source: source)
    }
}
