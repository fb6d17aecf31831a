import MediaQueueCore
import MediaQueueXML

/// Reads the fields of one element of an operation (e.g. `Operation.Transcode.Video`) and checks
/// them against CI's ranges. Every error is an `InvalidArgument` naming the full path of the field
/// (`Operation.Transcode.Video.Crf`), so a client sees exactly what to fix.
///
/// CI treats an empty element as unset, so empty text reads as nil everywhere.
struct OperationFields: Sendable {
    /// The element, or an empty one when it is absent (all its fields then read as unset).
    let element: XMLTree
    /// Its path from the request, e.g. `Operation.Transcode.Video`.
    let path: String

    init(_ element: XMLTree?, path: String) {
        self.element = element ?? XMLTree(path.split(separator: ".").last.map(String.init) ?? path)
        self.path = path
    }

    /// The child element `name` as fields of its own.
    func child(_ name: String) -> OperationFields {
        OperationFields(element[name], path: "\(path).\(name)")
    }

    /// Whether the child element `name` is present with any content.
    func has(_ name: String) -> Bool {
        element[name].map { !$0.isEmpty && !($0.children.isEmpty && $0.text.trimmed.isEmpty) } ?? false
    }

    /// The field's full name, for messages.
    func name(_ field: String) -> String { "\(path).\(field)" }

    /// A field's trimmed text; nil when absent or empty.
    func string(_ field: String) -> String? {
        guard let text = element.text(field)?.trimmed, !text.isEmpty else { return nil }
        return text
    }

    /// An `InvalidArgument` about `field`.
    func invalid(_ field: String, _ message: String) -> CIError {
        Self.invalid(name(field), message)
    }

    /// One of `allowed`, compared without case; returns the spelling from `allowed`.
    func choice(_ field: String, _ allowed: [String]) throws(CIError) -> String? {
        guard let text = string(field) else { return nil }
        guard let match = allowed.first(where: { $0.lowercased() == text.lowercased() }) else {
            throw invalid(field, "'\(text)' is not one of \(allowed.joined(separator: ", "))")
        }
        return match
    }

    /// An integer within `range`.
    func int(_ field: String, in range: ClosedRange<Int>, unit: String = "") throws(CIError) -> Int? {
        guard let text = string(field) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw invalid(field, "must be an integer in [\(range.lowerBound), \(range.upperBound)]\(unit), not '\(text)'")
        }
        return value
    }

    /// An integer that is one of `values`.
    func int(_ field: String, oneOf values: [Int]) throws(CIError) -> Int? {
        guard let text = string(field) else { return nil }
        guard let value = Int(text), values.contains(value) else {
            throw invalid(field, "must be one of \(values.map(String.init).joined(separator: ", ")), not '\(text)'")
        }
        return value
    }

    /// A finite number with `lower < value` (or `≤` when `lowerInclusive`) and `value ≤ upper`.
    func number(
        _ field: String, above lower: Double, inclusive lowerInclusive: Bool = false, upTo upper: Double = .greatestFiniteMagnitude,
        unit: String = ""
    ) throws(CIError) -> Double? {
        guard let text = string(field) else { return nil }
        guard let value = Double(text), value.isFinite, lowerInclusive ? value >= lower : value > lower, value <= upper else {
            let low = lowerInclusive ? "[" : "("
            let high = upper == .greatestFiniteMagnitude ? "∞)" : "\(Self.format(upper))]"
            throw invalid(field, "must be a number in \(low)\(Self.format(lower)), \(high)\(unit), not '\(text)'")
        }
        return value
    }

    /// `true` or `false` (any case); nil when unset.
    func bool(_ field: String) throws(CIError) -> Bool? {
        guard let text = string(field) else { return nil }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw invalid(field, "must be true or false, not '\(text)'")
        }
    }

    /// Refuses a field MediaQueue does not implement, rather than silently ignoring it.
    func refuse(_ field: String, unless allowed: (String) -> Bool = { _ in false }, _ why: String = "is not supported yet") throws(CIError) {
        if has(field), !allowed(element.text(field)?.trimmed ?? "") {
            throw invalid(field, why)
        }
    }

    /// The same shape as MediaQueueCore's `CIError.invalid`, which is internal there.
    static func invalid(_ element: String, _ message: String) -> CIError {
        CIError(.invalidArgument, "\(element): \(message)", element: element)
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

extension CIError {
    /// The same failure, reported by a running job (a stored operation re-read at run time).
    var asWorkFailure: WorkFailure { WorkFailure(code: code.rawValue, message: message) }
}
