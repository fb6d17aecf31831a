import Hummingbird
import MediaQueueCore

/// A request's query parameters, decoded as the SDKs encode them: names and values
/// percent-decoded, and `+` a space (Python's `requests` and Go's `url.Values` send a space so,
/// and sign it as `%20`). Hummingbird's `uri.queryParameters` leaves `+` and the names as they
/// came, so a prefix or a key with a space failed its signature and matched nothing.
struct QueryParameters: Sequence, Sendable {
    private let fields: FormData

    init(_ query: String?) {
        fields = FormData(query ?? "")
    }

    /// The parameter's first value as sent; nil when absent.
    subscript(_ name: String) -> String? {
        fields.pairs.first { $0.name == name }?.value
    }

    func has(_ name: String) -> Bool {
        fields.pairs.contains { $0.name == name }
    }

    /// The parameter's value, or nil when absent or empty (the SDKs send empty values for "not given").
    func nonEmpty(_ name: String) -> String? {
        guard let value = self[name], !value.isEmpty else { return nil }
        return value
    }

    func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.pairs.makeIterator()
    }
}

extension Request {
    /// The query, decoded (`QueryParameters`).
    var queryParameters: QueryParameters { QueryParameters(uri.query) }
}
