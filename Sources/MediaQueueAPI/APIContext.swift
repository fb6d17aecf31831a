public import Hummingbird
import MediaQueueXML
public import NIOCore

/// Per-request state: the bucket the request is about and the id printed in `x-ci-request-id`
/// and error bodies.
public struct APIContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var bucket: String = ""
    public var requestID: String = ""
    /// The request is addressed to the bucket's COS host: an object call, not a CI one.
    public var addressesObjects = false
    /// The client's address as this server sees it (a proxy's, behind one).
    public let clientSocketAddress: SocketAddress?

    public init(source: Source) {
        self.coreContext = .init(source: source)
        clientSocketAddress = source.channel.remoteAddress
    }

    /// `clientSocketAddress`'s IP address; empty when unknown.
    public var clientAddress: String { clientSocketAddress?.ipAddress ?? "" }
}

extension APIContext {
    /// `<Response><RequestId/>…children…</Response>`, as CI answers.
    func answer(_ children: [XMLTree]) -> Response {
        let tree = XMLTree("Response", children: [XMLTree("RequestId", text: requestID)] + children)
        return Response(
            status: .ok, headers: [.contentType: "application/xml"], body: .init(byteBuffer: ByteBuffer(bytes: tree.xmlBytes(declaration: true)))
        )
    }
}
